//! Every provider's example payloads (the seed documents', Meta's
//! documented ones), signed the provider's way by code independent of
//! wirehook's own signers, accepted by the real daemon and decoded into
//! the expected variant and fields, as the `probe` plugin sees them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha512;

use crate::fixtures::*;
use crate::harness::{Daemon, now};

/// POSTs and returns what `probe` saw, asserting 200.
async fn probe(daemon: &Daemon, path: &str, headers: &[(String, String)], body: &str) -> Value {
    let response = post(daemon, path, headers, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[tokio::test]
async fn messangi_interaction_is_a_campaign_event() {
    let daemon = builder().start();
    let headers = [h("X-Api-Key", MESSANGI_TOKEN), h("X-Client", "acme")];
    let seen = probe(&daemon, "/hooks/messangi", &headers, MESSANGI_INTERACTION).await;
    assert_eq!(seen["kind"], "campaign_interaction");
    assert_eq!(seen["source"]["provider"], "messangi");
    assert_eq!(
        seen["payload"],
        json!({
            "type": "campaign",
            "campaign_id": "5f8d0a1b2c3d4e5f6a7b8c9d",
            "label": "Welcome Message",
            "contact": {"id": null, "phone": "+15551234567", "name": null},
            "response": "2",
            "chosen_option": "2",
            "keyword": "RAFFLE",
        })
    );
    assert_eq!(seen["raw_json"]["store"], "downtown", "extra params kept");
    // Each custom header is required.
    let response = post(
        &daemon,
        "/hooks/messangi",
        &headers[..1],
        MESSANGI_INTERACTION,
    )
    .await;
    assert_eq!(response.status(), 401);
}

/// The vectors node made (tests/vectors/oneroute.jsonl): the seed's
/// examples, sent formatted as documented, signed over JSON.stringify.
fn oneroute_vector(name: &str) -> (String, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/oneroute.jsonl");
    let vectors = std::fs::read_to_string(path).unwrap();
    let vector: Value = vectors
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    assert_eq!(vector["secret"], ONEROUTE_SECRET);
    (
        vector["body"].as_str().unwrap().to_owned(),
        vector["signature"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn oneroute_seed_events_signed_by_node() {
    let daemon = builder().start();
    let (body, signature) =
        oneroute_vector("seed newMessage (as documented, one key a line): as sent");
    assert!(body.contains("\n"), "sent formatted, not as signed");
    let seen = probe(
        &daemon,
        "/hooks/oneroute",
        &[h("x-oneroute-signature", &signature)],
        &body,
    )
    .await;
    assert_eq!(seen["kind"], "newMessage");
    assert_eq!(
        seen["payload"],
        json!({
            "type": "message-received",
            "id": null,
            "contact": {"id": "customer@example.com", "phone": null, "name": "Message Sender"},
            "conversation_id": "bf9d96d9-e495-489a-a22a-206b0ea44d90",
            "text": "Hello World!",
            "content_type": "text",
            "media_url": null,
        })
    );
    assert_eq!(
        seen["raw_json"]["conversation"]["Channel"]["medium"],
        "WHATSAPP"
    );

    let (body, signature) = oneroute_vector("seed compaignDeliveryReport: pretty-printed");
    let seen = probe(
        &daemon,
        "/hooks/oneroute",
        &[h("x-oneroute-signature", &signature)],
        &body,
    )
    .await;
    assert_eq!(seen["kind"], "compaignDeliveryReport");
    assert_eq!(seen["payload"]["type"], "campaign");
    assert_eq!(seen["payload"]["campaign_id"], "campaign_id");
    assert_eq!(seen["payload"]["label"], "campaign completed.");

    // Changed by one byte: refused.
    let response = post(
        &daemon,
        "/hooks/oneroute",
        &[h("x-oneroute-signature", &signature)],
        &body.replace("completed", "complete"),
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn whatsable_seed_events_with_header_or_url_token() {
    let daemon = builder().start();
    let seen = probe(
        &daemon,
        "/hooks/whatsable",
        &[h("X-Whatsable-Token", WHATSABLE_TOKEN)],
        WHATSABLE_STATUS,
    )
    .await;
    assert_eq!(seen["kind"], "message_status");
    assert_eq!(seen["source"]["delivery_id"], "wamid.123456789:delivered");
    assert_eq!(
        seen["payload"],
        json!({"type": "message-status", "message_id": "wamid.123456789", "status": "delivered", "timestamp_ms": 1_711_230_104_477u64})
    );
    let path = format!("/hooks/whatsable?token={WHATSABLE_TOKEN}");
    let seen = probe(&daemon, &path, &[], WHATSABLE_INCOMING).await;
    assert_eq!(seen["kind"], "incoming_message");
    assert_eq!(
        seen["payload"],
        json!({
            "type": "message-received",
            "id": null,
            "contact": {"id": "6fb11ff2-d9b2-4560-8437-0fe58ec9f4a6", "phone": "8801734363287", "name": "John Doe"},
            "conversation_id": null,
            "text": "Hello!",
            "content_type": "text",
            "media_url": "https://api.insightssystem.com/vault/attachment.jpg",
        })
    );
    let response = post(
        &daemon,
        "/hooks/whatsable?token=wrong",
        &[],
        WHATSABLE_STATUS,
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn meta_documented_message_and_status() {
    let daemon = builder().start();
    let body = meta_text_message().to_string();
    let seen = probe(
        &daemon,
        "/hooks/meta",
        &[h("X-Hub-Signature-256", &meta_signature(&body))],
        &body,
    )
    .await;
    assert_eq!(seen["kind"], "text");
    assert_eq!(
        seen["source"]["delivery_id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(
        seen["payload"],
        json!({
            "type": "message-received",
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            "contact": {"id": "16505551234", "phone": "16505551234", "name": "Sheena Nelson"},
            "conversation_id": null,
            "text": "Does it come in another color?",
            "content_type": "text",
            "media_url": null,
        })
    );
    assert_eq!(seen["raw_json"], meta_text_message());

    let body = meta_status().to_string();
    let seen = probe(
        &daemon,
        "/hooks/meta",
        &[h("X-Hub-Signature-256", &meta_signature(&body))],
        &body,
    )
    .await;
    assert_eq!(seen["kind"], "delivered");
    assert_eq!(
        seen["payload"],
        json!({
            "type": "message-status",
            "message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA",
            "status": "delivered",
            "timestamp_ms": 1_750_263_773_000u64,
        })
    );
}

/// One POST with two messages and two statuses: four events, each with its
/// own delivery id, each handed to the plugin.
#[tokio::test]
async fn meta_many_events_in_one_request() {
    let daemon = builder().start();
    let mut body = meta_text_message();
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["messages"].as_array_mut().unwrap().push(json!({
        "from": "16505551234", "id": "wamid.second", "timestamp": "1749416390",
        "type": "image", "image": {"caption": "this one", "mime_type": "image/jpeg", "id": "1003383421387256"}
    }));
    let mut statuses = meta_status()["entry"][0]["changes"][0]["value"]["statuses"].clone();
    let mut read = statuses[0].clone();
    read["status"] = json!("read");
    statuses.as_array_mut().unwrap().push(read);
    value["statuses"] = statuses;
    let body = body.to_string();
    let response = post(
        &daemon,
        "/hooks/meta-queue",
        &[h("X-Hub-Signature-256", &meta_signature(&body))],
        &body,
    )
    .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let status_id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA";
    let ids = [
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".to_owned(),
        "wamid.second".to_owned(),
        format!("{status_id}:delivered"),
        format!("{status_id}:read"),
    ];
    assert_eq!(accepted, json!({"accepted": ids}));
    for id in &ids {
        daemon.wait_for_log(|l| {
            l["message"] == "plugin handled event"
                && l["route"] == "meta-queue"
                && l["delivery_id"] == *id
        });
    }
}

#[tokio::test]
async fn meta_subscription_handshake() {
    let daemon = builder().start();
    let client = crate::harness::client();
    let get = |query: String| {
        client
            .get(daemon.url(&format!("/hooks/meta?{query}")))
            .send()
    };
    let response = get(format!(
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={META_VERIFY_TOKEN}"
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "1158201444");

    let response = get("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess".into())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"].is_string());
    let line = daemon.wait_refused("meta", 1);
    assert_eq!(line["status"], 403);
    assert!(!line.to_string().contains(META_VERIFY_TOKEN), "{line}");

    // The queue route has no verify_token: it refuses every handshake.
    let response = client
        .get(daemon.url(&format!(
            "/hooks/meta-queue?hub.mode=subscribe&hub.challenge=1&hub.verify_token={META_VERIFY_TOKEN}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Other methods: 405, naming both.
    let response = client.put(daemon.url("/hooks/meta")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");
}

#[tokio::test]
async fn standard_webhooks_within_tolerance_only() {
    let daemon = builder().start();
    let body = r#"{"type":"invoice.paid","timestamp":"2026-11-25T10:00:00Z","data":{"id":"in_1"}}"#;
    let headers = standard_headers("msg_2Lh9KQ3vOZ1", now(), body);
    let seen = probe(&daemon, "/hooks/standard", &headers, body).await;
    assert_eq!(seen["kind"], "invoice.paid");
    assert_eq!(seen["source"]["delivery_id"], "msg_2Lh9KQ3vOZ1");
    assert_eq!(seen["payload"], json!({"type": "other"}));
    assert_eq!(seen["raw_json"]["data"]["id"], "in_1");

    // Replays: signed ten minutes ago, or ten minutes ahead.
    for (i, sent) in [now() - 600, now() + 600].into_iter().enumerate() {
        let headers = standard_headers("msg_old", sent, body);
        let response = post(&daemon, "/hooks/standard", &headers, body).await;
        assert_eq!(response.status(), 401);
        let line = daemon.wait_refused("standard", i + 1);
        assert!(
            line["reason"].as_str().unwrap().contains("timestamp"),
            "{line}"
        );
    }
    assert_eq!(daemon.plugin_calls("standard"), 1);
}

#[tokio::test]
async fn generic_hmac_base64() {
    let daemon = builder().start();
    let body = r#"{"id":820982911946154500,"email":"jon@example.com","type":"orders/create"}"#;
    let signature = STANDARD.encode(hmac256(HMAC_SECRET.as_bytes(), &[body.as_bytes()]));
    let seen = probe(
        &daemon,
        "/hooks/hmac",
        &[h("X-Shopify-Hmac-Sha256", &signature)],
        body,
    )
    .await;
    assert_eq!(seen["kind"], "orders/create");
    assert_eq!(seen["payload"], json!({"type": "other"}));
    // SHA-512 of the same is not what the route takes.
    let mut mac = Hmac::<Sha512>::new_from_slice(HMAC_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let wrong = STANDARD.encode(mac.finalize().into_bytes());
    let response = post(
        &daemon,
        "/hooks/hmac",
        &[h("X-Shopify-Hmac-Sha256", &wrong)],
        body,
    )
    .await;
    assert_eq!(response.status(), 401);
}
