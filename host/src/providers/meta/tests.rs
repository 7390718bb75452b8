//! Meta provider tests: Meta's documented payloads, many events in one
//! request, the handshake, bad proofs, and property tests.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::config::provider::{ProviderId, ProviderOptions};
use crate::providers::MAX_EVENTS_PER_REQUEST;
use crate::providers::testkit::{self, Req};

const APP_SECRET: &str = "6f1c0f5e2a9b4d7c8e3f1a2b3c4d5e6f";

fn meta() -> std::sync::Arc<dyn Provider> {
    let options = ProviderOptions::Meta(MetaOptions {
        verify_token: Some(Secret::new(&b"meatball-42"[..])),
    });
    testkit::provider(options, APP_SECRET)
}

/// Meta's documented text message (messages webhook reference).
pub fn text_message() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/payloads/meta-text-message.json"
    ))
    .unwrap()
}

/// Meta's documented status webhook (a delivered marketing message).
pub fn status() -> Value {
    serde_json::from_str(include_str!("../../../tests/payloads/meta-status.json")).unwrap()
}

fn receive(body: &Value) -> Vec<Decoded> {
    let provider = meta();
    testkit::receive(
        &*provider,
        decode,
        &testkit::signed(&*provider, &body.to_string()),
    )
    .unwrap()
}

#[test]
fn documented_text_message() {
    let events = receive(&text_message());
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, "text");
    assert_eq!(
        event.provider_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")
    );
    let Payload::MessageReceived(message) = &event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(
        message.text.as_deref(),
        Some("Does it come in another color?")
    );
    assert_eq!(message.content_type, "text");
    assert_eq!(message.contact.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(message.contact.phone.as_deref(), Some("16505551234"));
    assert_eq!(message.contact.id.as_deref(), Some("16505551234"));
    // One element: the raw JSON is the whole payload.
    assert_eq!(
        serde_json::from_str::<Value>(&event.raw_json).unwrap(),
        text_message()
    );
}

#[test]
fn documented_status() {
    let events = receive(&status());
    let event = &events[0];
    assert_eq!(event.kind, "delivered");
    assert_eq!(
        event.provider_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA:delivered")
    );
    assert_eq!(
        event.payload,
        Payload::MessageStatus(StatusUpdate {
            message_id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA".into(),
            status: "delivered".into(),
            timestamp_ms: Some(1_750_263_773_000),
        })
    );
}

/// Two entries, one carrying two messages from two contacts and a status,
/// the other a status and a change with no events: six events.
#[test]
fn one_request_carries_many_events() {
    let mut body = text_message();
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["contacts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"profile": {"name": "Ana"}, "wa_id": "5511999"}));
    value["messages"].as_array_mut().unwrap().push(json!({
        "from": "5511999", "id": "wamid.2", "timestamp": "1749416390", "type": "image",
        "image": {"caption": "this one", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256"}
    }));
    value["statuses"] = status()["entry"][0]["changes"][0]["value"]["statuses"].clone();
    let mut second = status()["entry"][0].clone();
    second["id"] = json!("999");
    second["changes"][0]["value"]["statuses"][0]["status"] = json!("read");
    second["changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}));
    body["entry"].as_array_mut().unwrap().push(second);

    let events = receive(&body);
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["text", "image", "delivered", "read", "account_update"]
    );
    let ids: Vec<_> = events.iter().map(|e| e.provider_id.as_deref()).collect();
    assert_eq!(ids[1], Some("wamid.2"));
    assert_ne!(
        ids[2], ids[3],
        "same status id, different status: different delivery ids"
    );
    assert_eq!(ids[4], None);

    let Payload::MessageReceived(image) = &events[1].payload else {
        panic!()
    };
    assert_eq!(image.contact.name.as_deref(), Some("Ana"));
    assert_eq!(image.text.as_deref(), Some("this one"));
    assert_eq!(image.media_url.as_deref(), Some("1003383421387256"));
    // Each event's raw JSON is the payload narrowed to it.
    let raw: Value = serde_json::from_str(&events[1].raw_json).unwrap();
    let value = &raw["entry"][0]["changes"][0]["value"];
    assert_eq!(raw["entry"].as_array().unwrap().len(), 1);
    assert_eq!(value["messages"].as_array().unwrap().len(), 1);
    assert_eq!(value["messages"][0]["id"], "wamid.2");
    assert_eq!(
        value["contacts"],
        json!([{"profile": {"name": "Ana"}, "wa_id": "5511999"}])
    );
    assert!(value.get("statuses").is_none());
    let raw: Value = serde_json::from_str(&events[4].raw_json).unwrap();
    assert_eq!(raw["entry"][0]["id"], "999");
    assert_eq!(
        raw["entry"][0]["changes"],
        json!([{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}])
    );
}

/// Many messages and a large field in the envelope: each event keeps its
/// own element and the envelope's own fields, not the large field, so the
/// events together hold about the body's bytes, not one body per event.
#[test]
fn decoding_is_linear_in_the_body() {
    let mut body = text_message();
    body["junk"] = "x".repeat(200_000).into();
    body["entry"][0]["changes"][0]["value"]["padding"] = "y".repeat(200_000).into();
    let message = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let messages: Vec<Value> = (0..MAX_EVENTS_PER_REQUEST)
        .map(|i| {
            let mut message = message.clone();
            message["id"] = format!("wamid.{i}").into();
            message
        })
        .collect();
    body["entry"][0]["changes"][0]["value"]["messages"] = messages.into();
    let text = body.to_string();
    let events = receive(&body);
    assert_eq!(events.len(), MAX_EVENTS_PER_REQUEST);
    let decoded: usize = events.iter().map(|e| e.raw_json.len()).sum();
    assert!(
        decoded < text.len(),
        "{decoded} bytes of events from a {}-byte body",
        text.len()
    );
    let raw: Value = serde_json::from_str(&events[7].raw_json).unwrap();
    assert_eq!(
        raw["entry"][0]["changes"][0]["value"]["messages"][0]["id"],
        "wamid.7"
    );
    assert_eq!(
        raw["entry"][0]["changes"][0]["value"]["metadata"],
        body["entry"][0]["changes"][0]["value"]["metadata"]
    );
    assert_eq!(raw["object"], "whatsapp_business_account");
    assert!(raw.get("junk").is_none() && !events[7].raw_json.contains("yyyy"));
}

/// One event too many, or envelope fields the events must each repeat
/// grown far beyond the body: 413, refused before the rest is decoded.
#[test]
fn too_many_events_or_bytes_are_too_large() {
    let mut body = text_message();
    let message = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    body["entry"][0]["changes"][0]["value"]["messages"] =
        vec![message.clone(); MAX_EVENTS_PER_REQUEST + 1].into();
    let provider = meta();
    let signed = testkit::signed(&*provider, &body.to_string());
    let document = provider.verify(&signed.request()).unwrap().document;
    let refused = decode(&document).unwrap_err();
    assert!(matches!(refused, Rejection::TooLarge(_)), "{refused:?}");
    assert!(refused.to_string().contains("events"), "{refused}");

    // `metadata` is kept in every event: a large one, with many messages,
    // would be stored once per message.
    let mut body = text_message();
    body["entry"][0]["changes"][0]["value"]["metadata"]["padding"] = "z".repeat(50_000).into();
    body["entry"][0]["changes"][0]["value"]["messages"] = vec![message; 200].into();
    let refused = decode(body.to_string().as_bytes()).unwrap_err();
    assert!(matches!(refused, Rejection::TooLarge(_)), "{refused:?}");
}

fn one_message(message: Value) -> Decoded {
    let mut body = text_message();
    body["entry"][0]["changes"][0]["value"]["messages"] = json!([message]);
    receive(&body).remove(0)
}

#[test]
fn replies_to_buttons_lists_and_flows() {
    let button = one_message(
        json!({"from": "16505551234", "id": "wamid.b", "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes, please"}}}),
    );
    assert_eq!(button.kind, "interactive");
    let Payload::MessageReceived(m) = &button.payload else {
        panic!()
    };
    assert_eq!(
        (m.text.as_deref(), m.content_type.as_str()),
        (Some("Yes, please"), "interactive")
    );

    let list = one_message(
        json!({"from": "16505551234", "id": "wamid.l", "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": "r2", "title": "Blue", "description": "navy"}}}),
    );
    let Payload::MessageReceived(m) = &list.payload else {
        panic!()
    };
    assert_eq!(m.text.as_deref(), Some("Blue"));

    let flow = one_message(
        json!({"from": "16505551234", "id": "wamid.f", "type": "interactive",
        "context": {"from": "15550783881", "id": "wamid.sent"},
        "interactive": {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent",
            "response_json": "{\"flow_token\": \"order-7\", \"size\": \"M\", \"qty\": 2}"}}}),
    );
    assert_eq!(flow.kind, "interactive");
    assert_eq!(flow.provider_id.as_deref(), Some("wamid.f"));
    let Payload::Flow(f) = &flow.payload else {
        panic!("{flow:?}")
    };
    assert_eq!(f.flow_id.as_deref(), Some("order-7"));
    assert_eq!(f.stage, FlowStage::Succeeded);
    assert_eq!(f.contact.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(
        f.variables,
        vec![("qty".into(), "2".into()), ("size".into(), "M".into())]
    );

    let unknown = one_message(
        json!({"from": "16505551234", "id": "wamid.u", "type": "unsupported",
        "errors": [{"code": 131051}]}),
    );
    let Payload::MessageReceived(m) = &unknown.payload else {
        panic!()
    };
    assert_eq!(
        (m.content_type.as_str(), m.text.as_deref()),
        ("unsupported", None)
    );
}

#[test]
fn bodies_without_entries_are_other_not_errors() {
    let events = receive(&json!({"object": "page"}));
    assert_eq!(
        (events[0].kind.as_str(), &events[0].payload),
        ("page", &Payload::Other)
    );
}

#[test]
fn handshake_echoes_the_challenge_only_for_the_token() {
    let provider = meta();
    let answer = |query: &str| {
        provider
            .handshake()
            .unwrap()
            .answer(&Req::get(query).request())
    };
    assert_eq!(
        answer("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatball-42").unwrap(),
        "1158201444"
    );
    assert!(matches!(
        answer("hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatball-43"),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        answer("hub.mode=subscribe&hub.challenge=1"),
        Err(Rejection::Forbidden(_))
    ));
    assert!(matches!(
        answer("hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatball-42"),
        Err(Rejection::BadRequest(_))
    ));
    assert!(matches!(
        answer("hub.mode=subscribe&hub.verify_token=meatball-42"),
        Err(Rejection::BadRequest(_))
    ));
    assert!(matches!(
        answer("hub.mode=subscribe&hub.challenge=%3Cscript%3E%20&hub.verify_token=meatball-42"),
        Err(Rejection::BadRequest(_))
    ));

    let no_token = testkit::provider(ProviderOptions::bare(ProviderId::Meta), APP_SECRET);
    let answer = no_token
        .handshake()
        .unwrap()
        .answer(&Req::get("hub.mode=subscribe&hub.challenge=1&hub.verify_token=").request());
    assert!(matches!(answer, Err(Rejection::Forbidden(_))));
}

#[test]
fn bad_proofs_are_unauthorized() {
    let provider = meta();
    let valid = testkit::signed(&*provider, &text_message().to_string());
    let signature = valid.headers[HEADER].to_str().unwrap().to_owned();
    let cases = [
        Req {
            headers: Default::default(),
            ..valid.clone()
        },
        valid
            .clone()
            .header(HEADER, &signature.replace("sha256=", "sha1=")),
        valid.clone().header(HEADER, &signature["sha256=".len()..]),
        valid.clone().header(HEADER, "sha256=nothex"),
        Req {
            body: text_message()
                .to_string()
                .replace("color", "colour")
                .into_bytes(),
            ..valid.clone()
        },
    ];
    for req in cases {
        assert!(
            matches!(
                provider.verify(&req.request()),
                Err(Rejection::Unauthorized(_))
            ),
            "{req:?}"
        );
    }
    let upper = valid.clone().header(
        HEADER,
        &signature.to_uppercase().replace("SHA256=", "sha256="),
    );
    assert!(
        provider.verify(&upper.request()).is_ok(),
        "hex is case-insensitive"
    );
}

proptest! {
    #[test]
    fn mutations_are_refused(text in "[ -~]{0,40}", mutation in testkit::mutation()) {
        let provider = meta();
        let mut body = text_message();
        body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!(text);
        let original = testkit::signed(&*provider, &body.to_string());
        testkit::check_refused(&*provider, decode, &original, &mutation, |a, b| {
            a.body == b.body && testkit::same_ignoring_case(a, b, HEADER)
        })?;
    }

    #[test]
    fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
        testkit::exercise(&*meta(), decode, &req);
    }
}
