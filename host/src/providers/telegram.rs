//! Telegram Bot API: `setWebhook`'s `secret_token` comes back on each
//! update in `X-Telegram-Bot-Api-Secret-Token`, compared in constant time
//! (Telegram signs nothing; the token alone is the proof, so the route's
//! URL should be HTTPS).
//!
//! Each request is one JSON `Update`: its `update_id` is the delivery id,
//! its kind the name of the one optional member it carries (`message`,
//! `edited_message`, `channel_post`, `callback_query`, …). Messages, their
//! edits and callback queries (a button's `data` as the text) decode to
//! message-received; every other kind is `other`.

use std::time::SystemTime;

use serde_json::Value;

use super::{Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::event::{Contact, Decoded, Message, Payload};
use crate::secret::Secret;

const HEADER: &str = "x-telegram-bot-api-secret-token";

pub fn build(secret: Secret) -> Box<dyn Provider> {
    Box::new(Telegram { secret })
}

struct Telegram {
    secret: Secret,
}

impl Provider for Telegram {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        let presented = req
            .headers
            .get(HEADER)
            .ok_or_else(|| Rejection::unauthorized("missing `X-Telegram-Bot-Api-Secret-Token`"))?;
        if !self.secret.matches(presented.as_bytes()) {
            return Err(Rejection::unauthorized("secret token does not match"));
        }
        super::require_json_content_type(req.headers)?;
        Ok(Verified::body(req))
    }

    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        let token = String::from_utf8(self.secret.expose().to_vec())
            .map_err(|_| SignError::HeaderNotText)?;
        Ok(Signed::json(
            payload,
            [("X-Telegram-Bot-Api-Secret-Token".to_owned(), token)],
        ))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let update: Value = json::object(document)?;
    let (kind, inner) = update
        .as_object()
        .and_then(|members| members.iter().find(|(key, _)| *key != "update_id"))
        .map_or(("telegram", &Value::Null), |(key, value)| {
            (key.as_str(), value)
        });
    let payload = match kind {
        "message"
        | "edited_message"
        | "channel_post"
        | "edited_channel_post"
        | "business_message" => Payload::MessageReceived(message(inner)),
        "callback_query" => Payload::MessageReceived(callback(inner)),
        _ => Payload::Other,
    };
    Ok(vec![Decoded {
        kind: kind.to_owned(),
        payload,
        raw_json: json::document_text(document),
        provider_id: json::text(&update, &["update_id"]),
    }])
}

fn message(message: &Value) -> Message {
    let text = json::text(message, &["text", "caption"]);
    let content_type = [
        "photo", "video", "voice", "audio", "document", "sticker", "location", "contact",
    ]
    .into_iter()
    .find(|kind| message.get(kind).is_some())
    .unwrap_or("text");
    Message {
        id: json::text(message, &["message_id"]),
        contact: contact(
            message.get("from").or_else(|| message.get("sender_chat")),
            message,
        ),
        conversation_id: message
            .get("chat")
            .and_then(|chat| json::text(chat, &["id"])),
        text,
        content_type: content_type.to_owned(),
        media_url: None,
    }
}

/// A button pressed under a message: its `data` is what the user chose.
fn callback(query: &Value) -> Message {
    let message = query.get("message").unwrap_or(&Value::Null);
    Message {
        id: json::text(query, &["id"]),
        contact: contact(query.get("from"), &Value::Null),
        conversation_id: message
            .get("chat")
            .and_then(|chat| json::text(chat, &["id"])),
        text: json::text(query, &["data", "game_short_name"]),
        content_type: "callback_query".to_owned(),
        media_url: None,
    }
}

/// The sender: first and last name joined, else the username or title;
/// the phone only when the message shares the sender's own contact.
fn contact(from: Option<&Value>, message: &Value) -> Contact {
    let from = from.unwrap_or(&Value::Null);
    let names: Vec<String> = ["first_name", "last_name"]
        .iter()
        .filter_map(|key| json::text(from, &[key]))
        .collect();
    let name = (!names.is_empty())
        .then(|| names.join(" "))
        .or_else(|| json::text(from, &["username", "title"]));
    let id = json::text(from, &["id"]);
    let shared = message
        .get("contact")
        .filter(|shared| id.is_some() && json::text(shared, &["user_id"]) == id);
    Contact {
        phone: shared.and_then(|shared| json::text(shared, &["phone_number"])),
        id,
        name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit;
    use proptest::prelude::*;

    const SECRET: &str = "tg-webhook_Secret-42";

    fn provider() -> std::sync::Arc<dyn Provider> {
        testkit::provider(ProviderOptions::bare(ProviderId::Telegram), SECRET)
    }

    #[test]
    fn messages_and_callbacks_decode() {
        let p = provider();
        let update = r#"{"update_id":10000,"message":{"message_id":1365,"date":1441645532,"chat":{"id":1111111,"type":"private"},"from":{"id":1111111,"first_name":"Ada","last_name":"Lovelace","username":"ada"},"text":"/start"}}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, update)).unwrap();
        assert_eq!(events[0].kind, "message");
        assert_eq!(events[0].provider_id.as_deref(), Some("10000"));
        let Payload::MessageReceived(m) = &events[0].payload else {
            panic!("{:?}", events[0].payload)
        };
        assert_eq!(m.text.as_deref(), Some("/start"));
        assert_eq!(m.id.as_deref(), Some("1365"));
        assert_eq!(m.contact.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(m.conversation_id.as_deref(), Some("1111111"));

        let shared = r#"{"update_id":10001,"message":{"message_id":1366,"chat":{"id":7},"from":{"id":7,"first_name":"Bo"},"contact":{"phone_number":"+5511999990000","first_name":"Bo","user_id":7}}}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, shared)).unwrap();
        let Payload::MessageReceived(m) = &events[0].payload else {
            panic!()
        };
        assert_eq!(m.contact.phone.as_deref(), Some("+5511999990000"));
        assert_eq!(m.content_type, "contact");

        let callback = r#"{"update_id":10002,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":7,"first_name":"Bo"},"message":{"message_id":9,"chat":{"id":7}},"data":"order:approve"}}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, callback)).unwrap();
        assert_eq!(events[0].kind, "callback_query");
        let Payload::MessageReceived(m) = &events[0].payload else {
            panic!()
        };
        assert_eq!(m.text.as_deref(), Some("order:approve"));
        assert_eq!(m.conversation_id.as_deref(), Some("7"));

        let poll = r#"{"update_id":10003,"poll":{"id":"1"}}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, poll)).unwrap();
        assert_eq!(
            (events[0].kind.as_str(), &events[0].payload),
            ("poll", &Payload::Other)
        );
    }

    #[test]
    fn a_wrong_or_missing_token_is_refused() {
        let p = provider();
        let req = testkit::signed(&*p, r#"{"update_id":1}"#);
        assert!(p.verify(&req.request()).is_ok());
        let wrong = req.clone().header(HEADER, "tg-webhook_Secret-43");
        assert!(matches!(
            p.verify(&wrong.request()),
            Err(Rejection::Unauthorized(_))
        ));
        let mut missing = req.clone();
        missing.headers.remove(HEADER);
        assert!(matches!(
            p.verify(&missing.request()),
            Err(Rejection::Unauthorized(_))
        ));
    }

    proptest! {
        #[test]
        fn header_mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::header_mutation()) {
            let p = provider();
            let body = serde_json::json!({"update_id": 5, "message": {"text": data}}).to_string();
            let original = testkit::signed(&*p, &body);
            testkit::check_refused(&*p, decode, &original, &mutation, |_, _| false)?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            testkit::exercise(&*provider(), decode, &req);
        }
    }
}
