use std::time::Duration;

use super::*;
use crate::config::provider::{ProviderId, ProviderOptions};
use crate::providers::testkit::{self, Req};
use proptest::prelude::*;

/// Slack's documented example ("Verifying requests from Slack",
/// api.slack.com/authentication/verifying-requests-from-slack).
const DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const DOCS_TIMESTAMP: u64 = 1_531_420_618;
const DOCS_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOCS_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn docs_provider() -> Slack {
    Slack {
        secret: Secret::new(DOCS_SECRET.as_bytes()),
    }
}

fn docs_request() -> Req {
    Req::post(&Signed {
        headers: vec![
            (
                "X-Slack-Request-Timestamp".to_owned(),
                DOCS_TIMESTAMP.to_string(),
            ),
            ("X-Slack-Signature".to_owned(), DOCS_SIGNATURE.to_owned()),
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        body: DOCS_BODY.as_bytes().to_vec(),
    })
}

#[test]
fn slacks_documented_slash_command_verifies_and_decodes() {
    let p = docs_provider();
    let req = docs_request();
    let verified = p.verify_at(&req.request(), at(DOCS_TIMESTAMP)).unwrap();
    let events = decode(&verified.document).unwrap();
    assert_eq!(events[0].kind, "slash_command");
    let Payload::MessageReceived(message) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(message.text.as_deref(), Some("/webhook-collect"));
    assert_eq!(message.contact.id.as_deref(), Some("U2CERLKJA"));
    assert_eq!(message.contact.name.as_deref(), Some("roadrunner"));
    assert_eq!(message.conversation_id.as_deref(), Some("G8PSS9T3V"));
    let raw: Value = serde_json::from_str(&events[0].raw_json).unwrap();
    assert_eq!(
        raw["response_url"],
        "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
    );
    assert_eq!(
        crate::providers::decode_again(decode, "slash_command", &events[0].raw_json),
        Ok(events[0].payload.clone())
    );
    // Five minutes either way, not one second more.
    assert!(
        p.verify_at(&req.request(), at(DOCS_TIMESTAMP + 300))
            .is_ok()
    );
    assert!(
        p.verify_at(&req.request(), at(DOCS_TIMESTAMP + 301))
            .is_err()
    );
    assert!(
        p.verify_at(&req.request(), at(DOCS_TIMESTAMP - 301))
            .is_err()
    );
    let mut other = req.clone();
    other.body = DOCS_BODY.replace("roadrunner", "coyote").into_bytes();
    assert!(p.verify_at(&other.request(), at(DOCS_TIMESTAMP)).is_err());
}

#[test]
fn url_verification_is_answered_with_its_challenge() {
    let p = testkit::provider(ProviderOptions::bare(ProviderId::Slack), DOCS_SECRET);
    let req = testkit::signed(
        &*p,
        r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#,
    );
    let verified = p.verify(&req.request()).unwrap();
    let answer: Value = serde_json::from_str(verified.answer.as_deref().unwrap()).unwrap();
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[test]
fn events_and_interactivity_decode() {
    let p = testkit::provider(ProviderOptions::bare(ProviderId::Slack), DOCS_SECRET);
    let event = r#"{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"message","user":"U061F7AUR","text":"hi there","channel":"C0LAN2Q65","ts":"1515449522.000016","client_msg_id":"5f3a"}}"#;
    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, event)).unwrap();
    assert_eq!(events[0].kind, "message");
    assert_eq!(events[0].provider_id.as_deref(), Some("Ev08MFMKH6"));
    let Payload::MessageReceived(message) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(message.text.as_deref(), Some("hi there"));
    assert_eq!(message.id.as_deref(), Some("5f3a"));
    let edited = event.replace(
        r#""type":"message","#,
        r#""type":"message","subtype":"message_changed","#,
    );
    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, &edited)).unwrap();
    assert_eq!(events[0].payload, Payload::Other);

    // Interactivity: a form with its JSON in `payload`.
    let inner =
        r#"{"type":"block_actions","trigger_id":"1.2.3","actions":[{"action_id":"approve"}]}"#;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", inner)
        .finish();
    let now = SystemTime::now();
    let ts = now
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let digest = mac::sign(
        HmacAlgorithm::Sha256,
        DOCS_SECRET.as_bytes(),
        &[b"v0:", ts.as_bytes(), b":", body.as_bytes()],
    );
    let req = Req::post(&Signed {
        headers: vec![
            ("X-Slack-Request-Timestamp".to_owned(), ts),
            (
                "X-Slack-Signature".to_owned(),
                format!("v0={}", hex::encode(digest)),
            ),
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        body: body.into_bytes(),
    });
    let events = testkit::receive(&*p, decode, &req).unwrap();
    assert_eq!(events[0].kind, "block_actions");
    let raw: Value = serde_json::from_str(&events[0].raw_json).unwrap();
    assert_eq!(raw["payload"], inner);
}

#[test]
fn other_content_types_are_refused() {
    let p = testkit::provider(ProviderOptions::bare(ProviderId::Slack), DOCS_SECRET);
    let req =
        testkit::signed(&*p, r#"{"type":"event_callback"}"#).header("content-type", "text/plain");
    assert!(matches!(
        p.verify(&req.request()),
        Err(Rejection::UnsupportedMediaType(_))
    ));
}

proptest! {
    #[test]
    fn mutations_are_refused(data in "[ -~]{0,40}", command in any::<bool>(), mutation in testkit::mutation()) {
        let p = testkit::provider(ProviderOptions::bare(ProviderId::Slack), DOCS_SECRET);
        let body = if command {
            serde_json::json!({"command": "/order", "text": data, "user_id": "U1"})
        } else {
            serde_json::json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "message", "text": data}})
        };
        let original = testkit::signed(&*p, &body.to_string());
        testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
            a.body == b.body
                && a.headers.get(TIMESTAMP) == b.headers.get(TIMESTAMP)
                && testkit::same_ignoring_case(a, b, SIGNATURE)
        })?;
    }

    #[test]
    fn arbitrary_requests_never_panic(req in testkit::arbitrary_request(), now in any::<u64>()) {
        let p = docs_provider();
        let _ = p.verify_at(&req.request(), at(now % (1 << 40)));
        testkit::exercise(&p, decode, &req);
    }
}
