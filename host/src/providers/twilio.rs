//! Twilio: `X-Twilio-Signature`, the base64 HMAC-SHA1 under the account's
//! auth token of the full URL Twilio called followed by each POST field's
//! name and value, sorted by name (a repeated field's distinct values
//! sorted, as Twilio's own libraries do). Behind a proxy that URL is not
//! the one wirehook sees, so the route names it: `public_url`, to which
//! the request's own query is appended. A JSON body is proven instead by
//! its hex SHA-256 in the URL's `bodySHA256` parameter, the URL alone
//! being what is signed.
//!
//! Form bodies become their fields as JSON ([`super::form`]). An incoming
//! message (`Body`, `From`, `To`, `MessageSid`, `NumMedia`/`MediaUrl0`,
//! WhatsApp's `ProfileName`) decodes to message-received, kind
//! `incoming-message`, delivery id its `MessageSid`; a status callback
//! (`MessageStatus`) to message-status, kind `status-callback`, delivery
//! id `{MessageSid}-{MessageStatus}`, each step of a message its own
//! delivery. Anything else (voice, JSON bodies) is kind `twilio`, `other`.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::token::query_param;
use super::{ConfigIssue, Provider, Rejection, Request, SignError, Signed, Verified, form, json};
use crate::config::provider::TwilioOptions;
use crate::event::{Contact, Decoded, Message, Payload, StatusUpdate};
use crate::secret::Secret;

const HEADER: &str = "x-twilio-signature";

pub fn build(options: &TwilioOptions, secret: Secret) -> Result<Box<dyn Provider>, ConfigIssue> {
    let url = options.public_url.clone().ok_or_else(|| ConfigIssue {
        field: "public_url",
        reason: "the `twilio` provider needs the URL Twilio calls".to_owned(),
    })?;
    Ok(Box::new(Twilio {
        url: url.to_string(),
        secret,
    }))
}

struct Twilio {
    /// `public_url`, without query.
    url: String,
    secret: Secret,
}

impl Twilio {
    fn mac(&self, url: &str, fields: &[(String, String)]) -> Hmac<Sha1> {
        let mut mac =
            Hmac::<Sha1>::new_from_slice(self.secret.expose()).expect("HMAC takes any key length");
        mac.update(url.as_bytes());
        for (name, value) in fields {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac
    }
}

/// The fields of a form as Twilio signs them: sorted by name, each
/// distinct value of a name once, sorted.
fn signed_fields(body: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = form::fields(body)
        .into_iter()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

impl Provider for Twilio {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        let signature = req
            .headers
            .get(HEADER)
            .ok_or_else(|| Rejection::unauthorized("missing `X-Twilio-Signature` header"))?;
        let signature = STANDARD
            .decode(signature.as_bytes())
            .map_err(|_| Rejection::unauthorized("`X-Twilio-Signature` is not base64"))?;
        let url = if req.query.is_empty() {
            self.url.clone()
        } else {
            format!("{}?{}", self.url, req.query)
        };
        if form::is_form(req.headers) {
            if self
                .mac(&url, &signed_fields(req.body))
                .verify_slice(&signature)
                .is_err()
            {
                return Err(Rejection::unauthorized("signature does not match"));
            }
            return Ok(Verified::document(form::document(req)?));
        }
        super::require_json_content_type(req.headers)?;
        let presented = query_param(req.query, "bodySHA256")
            .ok_or_else(|| Rejection::unauthorized("a JSON body needs `bodySHA256` in the URL"))?;
        if self.mac(&url, &[]).verify_slice(&signature).is_err() {
            return Err(Rejection::unauthorized("signature does not match"));
        }
        let hash = hex::encode(Sha256::digest(req.body));
        if !bool::from(hash.as_bytes().ct_eq(&presented.to_ascii_lowercase())) {
            return Err(Rejection::unauthorized("`bodySHA256` is not the body's"));
        }
        Ok(Verified::body(req))
    }

    /// A JSON object is sent as the form of its members, to `public_url`.
    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        let body = form::from_json(payload)?;
        let signature = self
            .mac(&self.url, &signed_fields(body.as_bytes()))
            .finalize()
            .into_bytes();
        Ok(Signed {
            headers: vec![
                ("X-Twilio-Signature".to_owned(), STANDARD.encode(signature)),
                (
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            body: body.into_bytes(),
        })
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let fields: Value = json::object(document)?;
    let text = |key: &str| json::text(&fields, &[key]);
    let sid = json::text(&fields, &["MessageSid", "SmsSid"]);
    let (kind, payload, provider_id) = match (text("MessageStatus"), &sid) {
        (Some(status), Some(sid)) => (
            "status-callback",
            Payload::MessageStatus(StatusUpdate {
                message_id: sid.clone(),
                status: status.clone(),
                timestamp_ms: None,
            }),
            Some(format!("{sid}-{status}")),
        ),
        (None, Some(_)) if fields.get("Body").is_some() || fields.get("NumMedia").is_some() => {
            let media = text("NumMedia").is_some_and(|n| n != "0");
            let from = text("From");
            (
                "incoming-message",
                Payload::MessageReceived(Message {
                    id: sid.clone(),
                    contact: Contact {
                        id: text("WaId").or_else(|| from.clone()),
                        // `whatsapp:+1…` is a number on WhatsApp.
                        phone: from.map(|f| f.strip_prefix("whatsapp:").unwrap_or(&f).to_owned()),
                        name: text("ProfileName"),
                    },
                    conversation_id: text("To"),
                    text: text("Body"),
                    content_type: media
                        .then(|| text("MediaContentType0"))
                        .flatten()
                        .unwrap_or_else(|| "text".to_owned()),
                    media_url: media.then(|| text("MediaUrl0")).flatten(),
                }),
                sid.clone(),
            )
        }
        // A call's steps share their `CallSid`: the document tells them apart.
        _ => ("twilio", Payload::Other, None),
    };
    Ok(vec![Decoded {
        kind: kind.to_owned(),
        payload,
        raw_json: json::document_text(document),
        provider_id,
    }])
}

#[cfg(test)]
#[path = "twilio/tests.rs"]
mod tests;
