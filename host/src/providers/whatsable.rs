//! WhatsAble: `message_status` and `incoming_message` events, as
//! `{"event": ..., "data": {...}}`.
//!
//! Proof: WhatsAble documents no signature. A shared token in a header
//! (the route's `header`, default `X-Whatsable-Token`) or in the URL
//! (`?token=`), compared in constant time, plus the route's `allow_ips`.
//!
//! `incoming_message` carries the recent conversation in `last_messages`,
//! a JSON array *encoded as a string*; the text and content type of the
//! event come from its last `user` entry, falling back to
//! `last_message_of_user` and `message_type`.

use axum::http::HeaderName;
use serde_json::Value;

use super::token::SharedToken;
use super::{ConfigIssue, Provider, Rejection, json, time};
use crate::config::provider::TokenOptions;
use crate::event::{Contact, Decoded, Message, Payload, StatusUpdate};
use crate::secret::Secret;

const DEFAULT_HEADER: HeaderName = HeaderName::from_static("x-whatsable-token");

pub fn build(options: &TokenOptions, secret: Secret) -> Result<Box<dyn Provider>, ConfigIssue> {
    Ok(Box::new(SharedToken::new(options, DEFAULT_HEADER, secret)?))
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body = json::object(document)?;
    let kind = json::text(&body, &["event"]);
    let null = Value::Null;
    let data = body.get("data").unwrap_or(&null);
    let (payload, provider_id) = match kind.as_deref() {
        Some("message_status") => status(data),
        Some("incoming_message") => (Payload::MessageReceived(message(data)), None),
        _ => (Payload::Other, None),
    };
    Ok(vec![Decoded {
        kind: kind.unwrap_or_else(|| "whatsable".to_owned()),
        payload,
        raw_json: json::document_text(document),
        provider_id,
    }])
}

/// The update, and its delivery id: message id and status (one message
/// goes through several).
fn status(data: &Value) -> (Payload, Option<String>) {
    let message_id = json::text(data, &["message_id"]);
    let status = json::text(data, &["status"]).unwrap_or_else(|| "unknown".to_owned());
    let timestamp_ms = data.get("timestamp").and_then(|t| match t {
        Value::String(text) => time::rfc3339_ms(text).or_else(|| time::unix_seconds_ms(t)),
        other => time::unix_seconds_ms(other),
    });
    let provider_id = message_id.as_ref().map(|id| format!("{id}:{status}"));
    let payload = Payload::MessageStatus(StatusUpdate {
        message_id: message_id.unwrap_or_default(),
        status,
        timestamp_ms,
    });
    (payload, provider_id)
}

fn message(data: &Value) -> Message {
    let last_user_message = data
        .get("last_messages")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|history| {
            history
                .as_array()?
                .iter()
                .rev()
                .find(|m| json::text(m, &["type"]).as_deref() == Some("user"))
                .cloned()
        })
        .unwrap_or(Value::Null);
    Message {
        id: json::text(data, &["message_id"]),
        contact: Contact {
            id: json::text(data, &["user_id"]),
            phone: json::text(data, &["phone_number"]),
            name: json::text(data, &["recipient_name"]),
        },
        conversation_id: None,
        text: json::text(&last_user_message, &["content"])
            .or_else(|| json::text(data, &["last_message_of_user"])),
        content_type: json::text(&last_user_message, &["content_type"])
            .or_else(|| json::text(data, &["message_type"]))
            .unwrap_or_else(|| "text".to_owned()),
        media_url: json::text(data, &["attachment_url"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit::{self, Req};
    use proptest::prelude::*;

    const TOKEN: &str = "wa-able-51c0";

    /// The seed document's (004) two examples.
    pub const STATUS: &str = r#"{"event":"message_status","data":{"message_id":"wamid.123456789","status":"delivered","timestamp":"2024-03-23T21:41:44.477Z"}}"#;
    pub const INCOMING: &str = r#"{"event":"incoming_message","data":{"last_messages":"[{\"type\":\"user\",\"content\":\"Hello!\",\"timestamp\":\"2024-03-23T21:41:44.477Z\",\"content_type\":\"text\"}]","conversation_paragraph":"User (9:41:44 PM): Hello!","phone_number":"8801734363287","recipient_name":"John Doe","user_id":"6fb11ff2-d9b2-4560-8437-0fe58ec9f4a6","last_message_of_user":"Hello!","last_message_of_bot":"Hi there!","message_type":"text","user_timestamp":1234567890,"bot_timestamp":1234567890,"attachment_url":"https://api.insightssystem.com/vault/attachment.jpg"}}"#;

    fn whatsable() -> std::sync::Arc<dyn Provider> {
        testkit::provider(ProviderOptions::bare(ProviderId::Whatsable), TOKEN)
    }

    #[test]
    fn seed_status_event() {
        let p = whatsable();
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, STATUS)).unwrap();
        assert_eq!(events[0].kind, "message_status");
        assert_eq!(
            events[0].provider_id.as_deref(),
            Some("wamid.123456789:delivered")
        );
        assert_eq!(
            events[0].payload,
            Payload::MessageStatus(StatusUpdate {
                message_id: "wamid.123456789".into(),
                status: "delivered".into(),
                timestamp_ms: Some(1_711_230_104_477),
            })
        );
    }

    #[test]
    fn seed_incoming_message_event() {
        let p = whatsable();
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, INCOMING)).unwrap();
        assert_eq!(events[0].kind, "incoming_message");
        assert_eq!(
            events[0].payload,
            Payload::MessageReceived(Message {
                id: None,
                contact: Contact {
                    id: Some("6fb11ff2-d9b2-4560-8437-0fe58ec9f4a6".into()),
                    phone: Some("8801734363287".into()),
                    name: Some("John Doe".into()),
                },
                conversation_id: None,
                text: Some("Hello!".into()),
                content_type: "text".into(),
                media_url: Some("https://api.insightssystem.com/vault/attachment.jpg".into()),
            })
        );
    }

    #[test]
    fn last_messages_wins_and_bad_history_falls_back() {
        let p = whatsable();
        let body = serde_json::json!({"event": "incoming_message", "data": {
            "last_messages": serde_json::json!([
                {"type": "user", "content": "first", "content_type": "text"},
                {"type": "user", "content": "photo of it", "content_type": "image"},
                {"type": "bot", "content": "thanks", "content_type": "text"}
            ]).to_string(),
            "last_message_of_user": "stale"}});
        let events =
            testkit::receive(&*p, decode, &testkit::signed(&*p, &body.to_string())).unwrap();
        let Payload::MessageReceived(m) = &events[0].payload else {
            panic!()
        };
        assert_eq!(
            (m.text.as_deref(), m.content_type.as_str()),
            (Some("photo of it"), "image")
        );

        let broken = r#"{"event":"incoming_message","data":{"last_messages":"[{not json","last_message_of_user":"hi","message_type":"text"}}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, broken)).unwrap();
        let Payload::MessageReceived(m) = &events[0].payload else {
            panic!()
        };
        assert_eq!(m.text.as_deref(), Some("hi"));

        let unknown = testkit::receive(
            &*p,
            decode,
            &testkit::signed(&*p, r#"{"event":"contact_created","data":{}}"#),
        )
        .unwrap();
        assert_eq!(
            (unknown[0].kind.as_str(), &unknown[0].payload),
            ("contact_created", &Payload::Other)
        );
    }

    #[test]
    fn url_token_works_in_place_of_the_header() {
        let p = whatsable();
        let req = Req {
            query: format!("token={TOKEN}"),
            headers: Default::default(),
            ..testkit::signed(&*p, STATUS)
        };
        assert!(p.verify(&req.request()).is_ok());
        let wrong = Req {
            query: "token=nope".into(),
            ..req
        };
        assert!(p.verify(&wrong.request()).is_err());
    }

    proptest! {
        #[test]
        fn header_mutations_are_refused(mutation in testkit::header_mutation()) {
            let p = whatsable();
            let original = testkit::signed(&*p, INCOMING);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                let trimmed = |r: &Req| r.headers.get("x-whatsable-token").map(|v| v.as_bytes().trim_ascii().to_vec());
                trimmed(a) == trimmed(b)
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            testkit::exercise(&*whatsable(), decode, &req);
        }
    }
}
