//! What the provider tests share: a daemon with a route for every
//! provider (all through `probe`), their secrets, the example payloads of
//! the seed documents and Meta's documentation, and signing done the
//! providers' way by code independent of wirehook's own signers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::harness::{Daemon, DaemonBuilder, Route};

pub const MESSANGI_TOKEN: &str = "mgi-7b1e55";
pub const ONEROUTE_SECRET: &str = "OneRoute Secret Key";
pub const WHATSABLE_TOKEN: &str = "wa-able-51c0";
pub const META_SECRET: &str = "6f1c0f5e2a9b4d7c8e3f1a2b3c4d5e6f";
pub const META_VERIFY_TOKEN: &str = "meatball-42";
pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const HMAC_SECRET: &str = "shpss_0c1d2e3f";
pub const GOFLOW_TOKEN: &str = "flow-token-7f3a";
pub const TRUORA_SECRET: &str = "c48863adab6b101b79f08ddb2cfe1b1c";
pub const SHOPIFY_SECRET: &str = "shpss_shopify_9a8b7c";

/// Routes for every provider, `respond` mode through `probe`, plus a
/// `queue` route for Meta's multi-event requests.
pub fn builder() -> DaemonBuilder {
    let mut builder = DaemonBuilder::new("");
    for route in [
        Route::hook("messangi", "messangi")
            .secret("env:T_MESSANGI")
            .text("header", "X-Api-Key")
            .value("headers", r#"{ X-Client = "acme" }"#)
            .plugins(&["probe"])
            .respond(),
        Route::hook("oneroute", "oneroute")
            .secret("env:T_ONEROUTE")
            .value("allow_ips", r#"["127.0.0.1/32", "174.138.104.128/32"]"#)
            .plugins(&["probe"])
            .respond(),
        Route::hook("whatsable", "whatsable")
            .secret("env:T_WHATSABLE")
            .plugins(&["probe"])
            .respond(),
        Route::hook("meta", "meta")
            .secret("env:T_META")
            .text("verify_token", "env:T_META_VERIFY")
            .plugins(&["probe"])
            .respond(),
        Route::hook("meta-queue", "meta")
            .secret("env:T_META")
            .plugins(&["probe"])
            .queue(),
        Route::hook("standard", "standard-webhooks")
            .secret("env:T_SW")
            .plugins(&["probe"])
            .respond(),
        Route::hook("hmac", "hmac")
            .secret("env:T_HMAC")
            .text("header", "X-Shopify-Hmac-Sha256")
            .text("encoding", "base64")
            .plugins(&["probe"])
            .respond(),
        Route::hook("goflow", "goflow")
            .secret("env:T_GOFLOW")
            .plugins(&["probe"])
            .respond(),
        Route::hook("truora", "truora")
            .secret("env:T_TRUORA")
            .plugins(&["probe"])
            .respond(),
        Route::hook("shopify", "shopify")
            .secret("env:T_SHOPIFY")
            .plugins(&["probe"])
            .respond(),
    ] {
        builder = builder.route(route);
    }
    builder
        .plugin("probe")
        .env("T_MESSANGI", MESSANGI_TOKEN)
        .env("T_SHOPIFY", SHOPIFY_SECRET)
        .env("T_ONEROUTE", ONEROUTE_SECRET)
        .env("T_WHATSABLE", WHATSABLE_TOKEN)
        .env("T_META", META_SECRET)
        .env("T_META_VERIFY", META_VERIFY_TOKEN)
        .env("T_SW", SW_SECRET)
        .env("T_HMAC", HMAC_SECRET)
        .env("T_GOFLOW", GOFLOW_TOKEN)
        .env("T_TRUORA", TRUORA_SECRET)
}

pub fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

/// Meta's `X-Hub-Signature-256` for `body`.
pub fn meta_signature(body: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac256(META_SECRET.as_bytes(), &[body.as_bytes()]))
    )
}

/// Standard Webhooks headers for `body`, sent at `timestamp`.
pub fn standard_headers(id: &str, timestamp: u64, body: &str) -> Vec<(String, String)> {
    let key = STANDARD
        .decode(SW_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let ts = timestamp.to_string();
    let signature = hmac256(
        &key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body.as_bytes()],
    );
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts),
        (
            "webhook-signature".into(),
            format!("v1,{}", STANDARD.encode(signature)),
        ),
    ]
}

pub async fn post(
    daemon: &Daemon,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> reqwest::Response {
    let mut request = crate::harness::client()
        .post(daemon.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// The seed document's parameters (001), with a redirect's option and
/// keyword and one extra parameter.
pub const MESSANGI_INTERACTION: &str = r#"{"campaignId":"5f8d0a1b2c3d4e5f6a7b8c9d","label":"Welcome Message","phoneNumber":"+15551234567","date":"2024-03-23T21:41:44.47Z","response":"2","option":"2","keyword":"RAFFLE","store":"downtown"}"#;
/// The seed document's (004) examples.
pub const WHATSABLE_STATUS: &str = r#"{"event":"message_status","data":{"message_id":"wamid.123456789","status":"delivered","timestamp":"2024-03-23T21:41:44.477Z"}}"#;
pub const WHATSABLE_INCOMING: &str = r#"{"event":"incoming_message","data":{"last_messages":"[{\"type\":\"user\",\"content\":\"Hello!\",\"timestamp\":\"2024-03-23T21:41:44.477Z\",\"content_type\":\"text\"}]","conversation_paragraph":"User (9:41:44 PM): Hello!","phone_number":"8801734363287","recipient_name":"John Doe","user_id":"6fb11ff2-d9b2-4560-8437-0fe58ec9f4a6","last_message_of_user":"Hello!","last_message_of_bot":"Hi there!","message_type":"text","user_timestamp":1234567890,"bot_timestamp":1234567890,"attachment_url":"https://api.insightssystem.com/vault/attachment.jpg"}}"#;

/// Meta's documented text message (messages webhook reference).
pub fn meta_text_message() -> Value {
    serde_json::from_str(include_str!("../payloads/meta-text-message.json")).unwrap()
}

/// Meta's documented status webhook.
pub fn meta_status() -> Value {
    serde_json::from_str(include_str!("../payloads/meta-status.json")).unwrap()
}
