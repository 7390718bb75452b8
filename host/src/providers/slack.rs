//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{ts}:{body}">`
//! with the app's signing secret, `X-Slack-Request-Timestamp` (`ts`, Unix
//! seconds) within five minutes of now.
//!
//! Three kinds of request share the proof:
//! - Events API (JSON): the kind is the inner event's `type` (`message`,
//!   `app_mention`, …), the delivery id the `event_id`, the same on each
//!   retry. Messages and mentions decode to message-received.
//!   `url_verification`, which Slack sends when the request URL is set,
//!   is answered by wirehook with its `challenge` and reaches no plugin.
//! - Slash commands (a form): kind `slash_command`, message-received
//!   with the command and its text.
//! - Interactivity (a form whose `payload` field is JSON): the kind is
//!   that payload's `type` (`block_actions`, `view_submission`, …),
//!   payload `other`; the JSON sits in `raw_json` as a string field.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use super::{Provider, Rejection, Request, SignError, Signed, Verified, form, json, mac, time};
use crate::algorithm::HmacAlgorithm;
use crate::event::{Contact, Decoded, Message, Payload};
use crate::secret::Secret;

const SIGNATURE: &str = "x-slack-signature";
const TIMESTAMP: &str = "x-slack-request-timestamp";

pub fn build(secret: Secret) -> Box<dyn Provider> {
    Box::new(Slack { secret })
}

struct Slack {
    secret: Secret,
}

/// Just the members of a JSON body that say it is the URL check.
#[derive(Deserialize)]
struct Check {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge: Option<String>,
}

impl Slack {
    fn verify_at<'r>(&self, req: &Request<'r>, now: SystemTime) -> Result<Verified<'r>, Rejection> {
        let header = |name: &str| req.proof_header(name);
        let timestamp = header(TIMESTAMP)?;
        let signature = header(SIGNATURE)?
            .strip_prefix("v0=")
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or_else(|| Rejection::unauthorized("`X-Slack-Signature` is not `v0=<hex>`"))?;
        time::check_fresh(timestamp, now)?;
        let signed: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", req.body];
        if !mac::verify(
            HmacAlgorithm::Sha256,
            self.secret.expose(),
            &signed,
            &signature,
        ) {
            return Err(Rejection::unauthorized("signature does not match"));
        }
        let document = form::document(req)?;
        let mut verified = Verified::document(document);
        if !form::is_form(req.headers)
            && let Ok(Check {
                kind: Some(kind),
                challenge: Some(challenge),
            }) = serde_json::from_slice::<Check>(&verified.document)
            && kind == "url_verification"
        {
            verified.answer = Some(serde_json::json!({ "challenge": challenge }).to_string());
        }
        Ok(verified)
    }
}

impl Provider for Slack {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.verify_at(req, SystemTime::now())
    }

    /// A JSON payload is sent as it is (Events API); an object with a
    /// `command` member as the form of a slash command.
    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let body: Value =
            serde_json::from_slice(payload).map_err(|e| SignError::NotJson(Some(e.to_string())))?;
        let (body, content_type) = if body.get("command").is_some() {
            (
                form::from_json(payload)?.into_bytes(),
                "application/x-www-form-urlencoded",
            )
        } else {
            (payload.to_vec(), "application/json")
        };
        let ts = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let digest = mac::sign(
            HmacAlgorithm::Sha256,
            self.secret.expose(),
            &[b"v0:", ts.as_bytes(), b":", &body],
        );
        Ok(Signed {
            headers: vec![
                ("X-Slack-Request-Timestamp".to_owned(), ts),
                (
                    "X-Slack-Signature".to_owned(),
                    format!("v0={}", hex::encode(digest)),
                ),
                ("Content-Type".to_owned(), content_type.to_owned()),
            ],
            body,
        })
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body: Value = json::object(document)?;
    let raw_json = json::document_text(document);
    let text = |value: &Value, key: &str| json::text(value, &[key]);
    let (kind, payload, provider_id) = if body.get("command").is_some() {
        let command = [text(&body, "command"), text(&body, "text")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let message = Message {
            id: text(&body, "trigger_id"),
            contact: Contact {
                id: text(&body, "user_id"),
                phone: None,
                name: text(&body, "user_name"),
            },
            conversation_id: text(&body, "channel_id"),
            text: Some(command),
            content_type: "command".to_owned(),
            media_url: None,
        };
        (
            "slash_command".to_owned(),
            Payload::MessageReceived(message),
            None,
        )
    } else if let Some(Value::String(inner)) = body.get("payload") {
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| Rejection::bad_request(format!("`payload` is not JSON: {e}")))?;
        let kind = text(&inner, "type").unwrap_or_else(|| "interactivity".to_owned());
        (kind, Payload::Other, None)
    } else {
        let event = body.get("event").unwrap_or(&Value::Null);
        let kind = text(event, "type")
            .or_else(|| text(&body, "type"))
            .unwrap_or_else(|| "slack".to_owned());
        let plain = event.get("subtype").is_none() && event.get("bot_id").is_none();
        let payload = if matches!(kind.as_str(), "message" | "app_mention") && plain {
            Payload::MessageReceived(Message {
                id: json::text(event, &["client_msg_id", "ts"]),
                contact: Contact {
                    id: text(event, "user"),
                    phone: None,
                    name: None,
                },
                conversation_id: text(event, "channel"),
                text: text(event, "text"),
                content_type: "text".to_owned(),
                media_url: None,
            })
        } else {
            Payload::Other
        };
        (kind, payload, text(&body, "event_id"))
    };
    Ok(vec![Decoded {
        kind,
        payload,
        raw_json,
        provider_id,
    }])
}

#[cfg(test)]
#[path = "slack/tests.rs"]
mod tests;
