//! Vonage Messages API signed webhooks: `Authorization: Bearer <JWT>`,
//! HS256 with the account's signature secret. Its `payload_hash` claim
//! is the hex SHA-256 of the body, which is what ties the token to the
//! body; its `iat` must be within five minutes of now, so a captured
//! request cannot be replayed later. Only HS256 is accepted.
//!
//! Bodies are JSON: an inbound message (`message_type`, `text`, `from`,
//! `profile.name`) decodes to message-received with its `message_uuid`
//! as delivery id; a status (`status`) to message-status, delivery id
//! `{message_uuid}-{status}` so that each step of a message is its own
//! delivery. Anything else is kind `vonage`, payload `other`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Provider, Rejection, Request, SignError, Signed, Verified, json, time};
use crate::event::{Contact, Decoded, Message, Payload, StatusUpdate};
use crate::secret::Secret;

pub fn build(secret: &Secret) -> Box<dyn Provider> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    Box::new(Vonage {
        key: DecodingKey::from_secret(secret.expose()),
        signing_key: EncodingKey::from_secret(secret.expose()),
        validation,
    })
}

struct Vonage {
    key: DecodingKey,
    signing_key: EncodingKey,
    validation: Validation,
}

/// The claims wirehook checks.
#[derive(Serialize, Deserialize)]
struct Claims {
    iat: u64,
    payload_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

impl Vonage {
    fn verify_at<'r>(&self, req: &Request<'r>, now: SystemTime) -> Result<Verified<'r>, Rejection> {
        let value = req
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| Rejection::unauthorized("missing `Authorization` header"))?
            .to_str()
            .map_err(|_| Rejection::unauthorized("`Authorization` is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Rejection::unauthorized("`Authorization` is not `Bearer <JWT>`"))?
            .trim();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejection::unauthorized(format!("not a JWT: {e}")))?;
        if header.alg != Algorithm::HS256 {
            return Err(Rejection::unauthorized(format!(
                "JWT algorithm {:?} refused: only HS256 is accepted",
                header.alg
            )));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Rejection::unauthorized(format!("JWT refused: {e}")))?
            .claims;
        time::check_fresh(&claims.iat.to_string(), now)?;
        let hash = hex::encode(Sha256::digest(req.body));
        let presented = claims.payload_hash.to_ascii_lowercase();
        if !bool::from(hash.as_bytes().ct_eq(presented.as_bytes())) {
            return Err(Rejection::unauthorized("`payload_hash` is not the body's"));
        }
        super::require_json_content_type(req.headers)?;
        Ok(Verified::body(req))
    }
}

impl Provider for Vonage {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.verify_at(req, SystemTime::now())
    }

    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let claims = Claims {
            iat: since.as_secs(),
            payload_hash: hex::encode(Sha256::digest(payload)),
            jti: Some(format!("{:x}", since.as_nanos())),
            iss: Some("Vonage".to_owned()),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing_key)
                .map_err(|e| SignError::Jwt(e.to_string()))?;
        Ok(Signed::json(
            payload,
            [("Authorization".to_owned(), format!("Bearer {token}"))],
        ))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body: Value = json::object(document)?;
    let text = |key: &str| json::text(&body, &[key]);
    let uuid = text("message_uuid");
    let (kind, payload, provider_id) = match (text("status"), &uuid) {
        (Some(status), Some(uuid)) => (
            "message-status",
            Payload::MessageStatus(StatusUpdate {
                message_id: uuid.clone(),
                timestamp_ms: text("timestamp").as_deref().and_then(time::rfc3339_ms),
                status: status.clone(),
            }),
            Some(format!("{uuid}-{status}")),
        ),
        (None, Some(_)) if body.get("message_type").is_some() => {
            let content_type = text("message_type").unwrap_or_else(|| "text".to_owned());
            let media_url = body
                .get(content_type.as_str())
                .and_then(|media| json::text(media, &["url"]));
            let profile = body.get("profile").unwrap_or(&Value::Null);
            (
                "inbound-message",
                Payload::MessageReceived(Message {
                    id: uuid.clone(),
                    contact: Contact {
                        id: text("from"),
                        phone: text("from").filter(|from| from.bytes().all(|b| b.is_ascii_digit())),
                        name: json::text(profile, &["name"]),
                    },
                    conversation_id: None,
                    text: text("text"),
                    content_type,
                    media_url,
                }),
                uuid.clone(),
            )
        }
        _ => ("vonage", Payload::Other, uuid.clone()),
    };
    Ok(vec![Decoded {
        kind: kind.to_owned(),
        payload,
        raw_json: json::document_text(document),
        provider_id,
    }])
}

#[cfg(test)]
#[path = "vonage/tests.rs"]
mod tests;
