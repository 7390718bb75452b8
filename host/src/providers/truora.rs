//! Truora WhatsApp Flows: the body is a JWT signed HS256 with the shared
//! secret; its claims describe a flow that Started, Succeeded or Failed.
//!
//! Only HS256 is accepted: `alg: none` and every other algorithm are
//! refused before any claim is read, and `exp` / `nbf` are honoured when
//! present (Truora does not promise them, so they are not required).

use std::borrow::Cow;
use std::time::SystemTime;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::event::{Contact, Decoded, FlowEvent, FlowStage, Payload};
use crate::secret::Secret;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

pub fn build(secret: &Secret) -> Box<dyn Provider> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.leeway = LEEWAY_SECS;
    Box::new(Truora {
        key: DecodingKey::from_secret(secret.expose()),
        signing_key: EncodingKey::from_secret(secret.expose()),
        validation,
    })
}

struct Truora {
    key: DecodingKey,
    signing_key: EncodingKey,
    validation: Validation,
}

impl Provider for Truora {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        let token = token_of(req.body)?;
        // Checked before signature verification so the log says why.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Rejection::unauthorized(format!("body is not a JWT: {e}")))?;
        if header.alg != Algorithm::HS256 {
            return Err(Rejection::unauthorized(format!(
                "JWT algorithm {:?} refused: only HS256 is accepted",
                header.alg
            )));
        }
        // The claims as signed, not re-serialised: their own key order and
        // numbers reach the plugin, and nothing is built only to be printed.
        let claims = jsonwebtoken::decode::<Box<RawValue>>(token, &self.key, &self.validation)
            .map_err(|e| Rejection::unauthorized(format!("JWT refused: {e}")))?
            .claims;
        if !claims.get().starts_with('{') {
            return Err(Rejection::bad_request("JWT claims are not a JSON object"));
        }
        Ok(Verified::document(Cow::Owned(
            String::from(Box::<str>::from(claims)).into_bytes(),
        )))
    }

    /// The payload becomes the claims of an HS256 JWT, which is the body.
    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        let claims: Value =
            serde_json::from_slice(payload).map_err(|e| SignError::NotJson(Some(e.to_string())))?;
        // A JWT's claims are an object; verify refuses any other token.
        if !claims.is_object() {
            return Err(SignError::NotObject);
        }
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing_key)
                .map_err(|e| SignError::Jwt(e.to_string()))?;
        Ok(Signed {
            headers: vec![("Content-Type".to_owned(), "application/jwt".to_owned())],
            body: token.into_bytes(),
        })
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let claims = json::object(document)?;
    // Truora may nest the event under `data`; look there second.
    let fields = [&claims, claims.get("data").unwrap_or(&Value::Null)];
    let find = |keys: &[&str]| fields.iter().find_map(|v| json::text(v, keys));

    let kind = find(&["event", "event_name", "event_type", "type", "action"])
        .unwrap_or_else(|| "unknown".to_owned());
    let payload = match stage_of(&kind) {
        Some(stage) => Payload::Flow(FlowEvent {
            flow_id: find(&["flow_id", "process_id"]),
            flow_name: find(&["flow_name"]),
            stage,
            contact: Contact {
                id: find(&["user_id", "account_id", "client_user_id"]),
                phone: find(&["phone_number", "phone", "user_phone", "cellphone"]),
                name: find(&["name", "user_name", "full_name"]),
            },
            variables: fields
                .iter()
                .find_map(|v| v.get("variables").and_then(Value::as_object))
                .map(|vars| {
                    vars.iter()
                        .map(|(k, v)| (k.clone(), json::any_text(v)))
                        .collect()
                })
                .unwrap_or_default(),
        }),
        None => Payload::Other,
    };
    Ok(vec![Decoded {
        kind,
        payload,
        raw_json: json::document_text(document),
        provider_id: find(&["event_id", "jti", "id"]),
    }])
}

/// The body is the compact JWT, possibly quoted as a JSON string.
fn token_of(body: &[u8]) -> Result<&str, Rejection> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Rejection::unauthorized("body is not a JWT: not UTF-8"))?
        // JSON's whitespace, not Unicode's: nothing else may wrap a token.
        .trim_matches(|c: char| c.is_ascii_whitespace());
    let token = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if token.is_empty() {
        return Err(Rejection::unauthorized("body is not a JWT: empty"));
    }
    Ok(token)
}

/// Truora names the events Started, Success and Failed; accept the
/// prefixed and lower-case spellings too (`whatsapp_flow.succeeded`).
fn stage_of(kind: &str) -> Option<FlowStage> {
    let kind = kind.to_ascii_lowercase();
    if kind.contains("fail") {
        Some(FlowStage::Failed)
    } else if kind.contains("succe") || kind.contains("complete") {
        Some(FlowStage::Succeeded)
    } else if kind.contains("start") || kind.contains("creat") {
        Some(FlowStage::Started)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit;

    proptest::proptest! {
        /// Any change to the JWT body is refused, but for whitespace
        /// around it, which is not part of the token.
        #[test]
        fn mutations_are_refused(user in "[ -~]{0,30}", mutation in testkit::mutation()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::Truora), "c48863adab6b101b");
            let claims = serde_json::json!({"event": "Success", "user_id": user}).to_string();
            let original = testkit::signed(&*p, &claims);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                a.body.trim_ascii() == b.body.trim_ascii()
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::Truora), "c48863adab6b101b");
            testkit::exercise(&*p, decode, &req);
        }
    }

    #[test]
    fn stages_from_truora_names() {
        assert_eq!(stage_of("Started"), Some(FlowStage::Started));
        assert_eq!(stage_of("Success"), Some(FlowStage::Succeeded));
        assert_eq!(stage_of("whatsapp_flow.failed"), Some(FlowStage::Failed));
        assert_eq!(stage_of("step_viewed"), None);
    }

    /// A token signed over `claims` exactly as written (`sign` goes
    /// through a `Value`, which orders the keys).
    fn token_over(claims: &str, secret: &str) -> testkit::Req {
        let claims = RawValue::from_string(claims.to_owned()).unwrap();
        let key = EncodingKey::from_secret(secret.as_bytes());
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
        testkit::Req::post(&Signed {
            headers: Vec::new(),
            body: token.into_bytes(),
        })
    }

    #[test]
    fn the_document_is_the_claims_as_signed() {
        let secret = "c48863adab6b101b";
        let p = testkit::provider(ProviderOptions::bare(ProviderId::Truora), secret);
        let claims =
            r#"{"zeta":1.50,"event":"Success","alpha":"\u00e9","variables":{"b":"2","a":"1"}}"#;
        let req = token_over(claims, secret);
        let verified = p.verify(&req.request()).unwrap();
        assert_eq!(std::str::from_utf8(&verified.document).unwrap(), claims);
        let decoded = decode(&verified.document).unwrap();
        assert_eq!(decoded[0].raw_json, claims);
        let again = crate::providers::decode_again(decode, &decoded[0].kind, claims);
        assert_eq!(again.as_ref(), Ok(&decoded[0].payload));
        let Payload::Flow(flow) = &decoded[0].payload else {
            panic!("not a flow: {:?}", decoded[0].payload);
        };
        assert_eq!(
            flow.variables,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn claims_that_are_not_an_object_are_refused() {
        let secret = "c48863adab6b101b";
        let p = testkit::provider(ProviderOptions::bare(ProviderId::Truora), secret);
        for claims in ["[1, 2]", "\"Success\"", "7", "null"] {
            let req = token_over(claims, secret);
            let refused = p.verify(&req.request());
            assert!(
                matches!(
                    refused,
                    Err(Rejection::BadRequest(_) | Rejection::Unauthorized(_))
                ),
                "{claims}: {:?}",
                refused.map(|v| v.document)
            );
        }
    }

    #[test]
    fn quoted_tokens_are_unwrapped() {
        assert_eq!(token_of(b"\"a.b.c\"\n").unwrap(), "a.b.c");
        assert!(token_of(b"  ").is_err());
    }
}
