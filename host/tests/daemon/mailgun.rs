//! The `mailgun-js` example provider plugin (JavaScript, built by
//! `plugins/build --all`) through the real daemon: requests signed
//! Mailgun's way by code here, then forged, stale and tampered copies and
//! bodies that are not Mailgun's; and `wirehook sign --provider
//! plugin:mailgun-js`, whose request the daemon accepts.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Daemon, DaemonBuilder, Route, client, plugin_wasm, shared_cache_dir};
use crate::plugin_provider::{now_ms, post, signed_accepted_forged_refused};

const SIGNING_KEY: &str = "mailgun-signing-key-4b3c2d1e0f9a";
const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";

/// Mailgun's signature: hex HMAC-SHA256 of timestamp and token.
fn signature(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn delivered() -> Value {
    json!({
        "event": "delivered",
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "timestamp": 1_521_472_262.908_181,
        "recipient": "alice@example.com",
        "tags": ["newsletter"],
        "delivery-status": {"code": 250, "message": "OK"},
        "message": {"headers": {"message-id": "20130503182626.18666.16540@example.com"}}
    })
}

/// A Mailgun request's body: the proof and the event.
fn body(timestamp: &str, token: &str, signature: &str, event: &Value) -> String {
    json!({
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event
    })
    .to_string()
}

/// A body signed now with the signing key.
fn signed_body(event: &Value) -> String {
    let timestamp = (now_ms() / 1000).to_string();
    body(
        &timestamp,
        TOKEN,
        &signature(SIGNING_KEY, &timestamp, TOKEN),
        event,
    )
}

fn json_header() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".to_owned())]
}

fn daemon() -> Daemon {
    let route = |name: &str| {
        Route::hook(name, "plugin:mailgun-js")
            .secret("env:MAILGUN_SIGNING_KEY")
            .plugins(&["probe"])
    };
    DaemonBuilder::new("")
        .route(route("mailgun").respond())
        .route(route("mailgun-queue").queue())
        .plugin("mailgun-js")
        .plugin("probe")
        .plugins_settings(&format!("cache_dir = {:?}", shared_cache_dir()))
        .env("MAILGUN_SIGNING_KEY", SIGNING_KEY)
        .start()
}

#[tokio::test]
async fn mailgun_requests_signed_forged_stale_and_tampered() {
    let daemon = daemon();
    let event = delivered();
    let signed = signed_body(&event);

    // Signed: the event reaches the plugin as `event-data`.
    let (status, text) = post(&daemon, "/hooks/mailgun", &json_header(), &signed).await;
    assert_eq!(status, 200, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["kind"], "delivered", "{seen}");
    assert_eq!(seen["source"]["provider"], "plugin:mailgun-js");
    assert_eq!(seen["source"]["delivery_id"], "CPgfbmQMTCKtHW6uIWtuVe");
    assert_eq!(seen["raw_json"], event);
    daemon.wait_plugin_calls("mailgun", 1);

    let refused = |(status, text): (u16, String), expected: u16, why: &str| {
        assert_eq!(status, expected, "{why}: {text}");
        text
    };
    let now = (now_ms() / 1000).to_string();
    let send = |body: String| {
        let daemon = &daemon;
        async move { post(daemon, "/hooks/mailgun", &json_header(), &body).await }
    };
    // Forged: signed with another key.
    let forged = body(&now, TOKEN, &signature("not-the-key", &now, TOKEN), &event);
    let text = refused(send(forged).await, 401, "forged");
    assert!(text.contains("signature mismatch"), "{text}");
    // Stale, and from the future: signed as Mailgun would six minutes off.
    for minutes in [-6i64, 6] {
        let then = (now_ms() as i64 / 1000 + minutes * 60).to_string();
        let stale = body(&then, TOKEN, &signature(SIGNING_KEY, &then, TOKEN), &event);
        let text = refused(send(stale).await, 401, "six minutes off");
        assert!(text.contains("tolerance"), "{text}");
    }
    // Tampered: the signed token or timestamp changed, the signature kept.
    let proof = signature(SIGNING_KEY, &now, TOKEN);
    let other_token = TOKEN.replace('a', "b");
    refused(
        send(body(&now, &other_token, &proof, &event)).await,
        401,
        "another token",
    );
    let later = (now_ms() / 1000 + 1).to_string();
    refused(
        send(body(&later, TOKEN, &proof, &event)).await,
        401,
        "timestamp moved",
    );
    // No proof, or one that is not Mailgun's.
    let unsigned = json!({"event-data": event}).to_string();
    refused(send(unsigned).await, 401, "unsigned");
    let not_hex = body(&now, TOKEN, "zz", &event);
    refused(send(not_hex).await, 401, "signature not hex");
    let number = json!({"signature": {"timestamp": 1, "token": TOKEN, "signature": proof}, "event-data": event});
    refused(
        send(number.to_string()).await,
        401,
        "timestamp not a string",
    );
    // Bodies that are not what Mailgun sends.
    let text_plain = vec![("content-type", "text/plain".to_owned())];
    refused(
        post(&daemon, "/hooks/mailgun", &text_plain, &signed).await,
        415,
        "text/plain",
    );
    refused(send("{\"signature\":".to_owned()).await, 400, "not JSON");
    refused(send("[1, 2]".to_owned()).await, 400, "not an object");
    let no_event = body(&now, TOKEN, &proof, &json!("delivered"));
    refused(send(no_event).await, 400, "no event-data object");
    // A GET: Mailgun makes no handshake.
    let get = client()
        .get(daemon.url("/hooks/mailgun"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(
        daemon.plugin_calls("mailgun"),
        1,
        "no refused request reached the plugin"
    );

    // Queued: stored once per event id, however often Mailgun sends it.
    let (status, text) = post(&daemon, "/hooks/mailgun-queue", &json_header(), &signed).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"accepted": ["CPgfbmQMTCKtHW6uIWtuVe"]})
    );
    let again = signed_body(&event);
    let (status, text) = post(&daemon, "/hooks/mailgun-queue", &json_header(), &again).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["duplicates"],
        json!(["CPgfbmQMTCKtHW6uIWtuVe"])
    );
    daemon.wait_plugin_calls("mailgun-queue", 1);
}

/// `wirehook sign --provider plugin:mailgun-js` signs an event, or a whole
/// Mailgun body whose proof it replaces, as the daemon checks it.
#[tokio::test]
async fn wirehook_sign_makes_requests_mailgun_js_accepts() {
    let daemon = daemon();
    let wasm = plugin_wasm("mailgun-js");
    let plugin = ("mailgun-js", wasm.as_path());
    let event = delivered();
    let seen = signed_accepted_forged_refused(
        &daemon,
        "/hooks/mailgun",
        plugin,
        SIGNING_KEY,
        &event.to_string(),
    )
    .await;
    assert_eq!(seen["kind"], "delivered", "{seen}");
    assert_eq!(seen["raw_json"], event);

    let mut opened = event.clone();
    opened["event"] = json!("opened");
    opened["id"] = json!("Ase7i2zsRYeDXztHGENqRA");
    let whole = body("1", "stale-token", "00", &opened);
    let seen =
        signed_accepted_forged_refused(&daemon, "/hooks/mailgun", plugin, SIGNING_KEY, &whole)
            .await;
    assert_eq!(seen["kind"], "opened", "{seen}");
    assert_eq!(seen["source"]["delivery_id"], "Ase7i2zsRYeDXztHGENqRA");
}
