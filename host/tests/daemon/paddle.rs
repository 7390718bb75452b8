//! The `paddle-js` example provider plugin (JavaScript, built by
//! `plugins/build --all`) through the real daemon: requests signed Paddle
//! Billing's way by code here, then forged, stale, tampered and malformed
//! copies and bodies that are not Paddle's; and `wirehook sign --provider
//! plugin:paddle-js`, whose request the daemon accepts.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::provider::{now_ms, post, signed_accepted_forged_refused};
use crate::harness::{Daemon, DaemonBuilder, Route, client, plugin_wasm, shared_cache_dir};

const SECRET_KEY: &str = "pdl_ntfset_01hv8x2af9g4dg1dgs2x3qvk4v_4b3c2d1e0f9a";
const EVENT_ID: &str = "evt_01hv8x2acma2gz9xwjc06ebp6z";

/// Paddle's `h1`: hex HMAC-SHA256 of `<ts>:<body>`.
fn h1(key: &str, ts: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b":");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn completed() -> Value {
    json!({
        "event_id": EVENT_ID,
        "event_type": "transaction.completed",
        "occurred_at": "2024-04-12T10:18:49.621022Z",
        "notification_id": "ntf_01hv8x2af9g4dg1dgs2x3qvk4v",
        "data": {
            "id": "txn_01hv8wptq8987qeep44cyrewp9",
            "status": "completed",
            "customer_id": "ctm_01hv6y1jedq4p1n0yqn5ba3ky4",
            "currency_code": "USD",
            "details": {"totals": {"subtotal": "3000", "tax": "600", "total": "3600"}}
        }
    })
}

fn now_secs() -> String {
    (now_ms() / 1000).to_string()
}

/// The headers of a request whose `Paddle-Signature` is `signature`.
fn headers(signature: String) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("paddle-signature", signature),
    ]
}

/// The headers Paddle sends for `body` now, signed with the secret key.
fn signed(body: &str) -> Vec<(&'static str, String)> {
    let ts = now_secs();
    headers(format!("ts={ts};h1={}", h1(SECRET_KEY, &ts, body)))
}

fn daemon() -> Daemon {
    let route = |name: &str| {
        Route::hook(name, "plugin:paddle-js")
            .secret("env:PADDLE_SECRET_KEY")
            .plugins(&["probe"])
    };
    DaemonBuilder::new("")
        .route(route("paddle").respond())
        .route(route("paddle-queue").queue())
        .plugin("paddle-js")
        .plugin("probe")
        .plugins_settings(&format!("cache_dir = {:?}", shared_cache_dir()))
        .env("PADDLE_SECRET_KEY", SECRET_KEY)
        .start()
}

#[tokio::test]
async fn paddle_requests_signed_forged_stale_and_tampered() {
    let daemon = daemon();
    let event = completed();
    let body = event.to_string();

    // Signed: the body reaches the plugin as the event.
    let (status, text) = post(&daemon, "/hooks/paddle", &signed(&body), &body).await;
    assert_eq!(status, 200, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["kind"], "transaction.completed", "{seen}");
    assert_eq!(seen["source"]["provider"], "plugin:paddle-js");
    assert_eq!(seen["source"]["delivery_id"], EVENT_ID);
    assert_eq!(seen["raw_json"], event);
    daemon.wait_plugin_calls("paddle", 1);

    // While a secret key rotates: two `h1`, the second one matching.
    let ts = now_secs();
    let rotating = format!(
        "ts={ts};h1={};h1={}",
        h1("the-old-secret-key", &ts, &body),
        h1(SECRET_KEY, &ts, &body)
    );
    let (status, text) = post(&daemon, "/hooks/paddle", &headers(rotating), &body).await;
    assert_eq!(status, 200, "rotating: {text}");
    daemon.wait_plugin_calls("paddle", 2);

    let refused = |(status, text): (u16, String), expected: u16, why: &str| {
        assert_eq!(status, expected, "{why}: {text}");
        text
    };
    let send = |signature: String, body: String| {
        let daemon = &daemon;
        async move { post(daemon, "/hooks/paddle", &headers(signature), &body).await }
    };
    let ts = now_secs();
    let good = h1(SECRET_KEY, &ts, &body);

    // Forged: signed with another key.
    let forged = format!("ts={ts};h1={}", h1("not-the-key", &ts, &body));
    let text = refused(send(forged, body.clone()).await, 401, "forged");
    assert!(text.contains("signature mismatch"), "{text}");
    // Stale, and from the future: signed as Paddle would six minutes off.
    for minutes in [-6i64, 6] {
        let then = (now_ms() as i64 / 1000 + minutes * 60).to_string();
        let stale = format!("ts={then};h1={}", h1(SECRET_KEY, &then, &body));
        let text = refused(send(stale, body.clone()).await, 401, "six minutes off");
        assert!(text.contains("tolerance"), "{text}");
    }
    // Tampered: another event under a captured signature. The signature
    // covers the body, so this is refused.
    let mut refunded = event.clone();
    refunded["event_type"] = json!("transaction.refunded");
    let tampered = refunded.to_string();
    let text = refused(
        send(format!("ts={ts};h1={good}"), tampered).await,
        401,
        "body changed after signing",
    );
    assert!(text.contains("signature mismatch"), "{text}");
    let mut cheaper = event.clone();
    cheaper["data"]["details"]["totals"]["total"] = json!("1");
    refused(
        send(format!("ts={ts};h1={good}"), cheaper.to_string()).await,
        401,
        "amount changed after signing",
    );
    // The signed `ts` moved, the signature kept.
    let later = (now_ms() / 1000 + 1).to_string();
    refused(
        send(format!("ts={later};h1={good}"), body.clone()).await,
        401,
        "ts moved",
    );

    // No proof, or one that is not Paddle's.
    let unsigned = vec![("content-type", "application/json".to_owned())];
    let text = refused(
        post(&daemon, "/hooks/paddle", &unsigned, &body).await,
        401,
        "unsigned",
    );
    assert!(text.contains("missing"), "{text}");
    let mut wrong_digest = good.clone();
    wrong_digest.pop();
    for malformed in [
        good.clone(),
        format!("h1={good}"),
        format!("ts={ts}"),
        format!("ts={ts};h1="),
        format!("ts={ts};h1={wrong_digest}"),
        format!("ts={ts};h1={}", "zz".repeat(32)),
        format!("ts=soon;h1={good}"),
        format!("ts={ts};ts={ts};h1={good}"),
        format!("ts={ts},h1={good}"),
        format!("ts={ts};h1={good};h1={good};h1={good};h1={good};h1={good}"),
    ] {
        let text = refused(send(malformed.clone(), body.clone()).await, 401, &malformed);
        assert!(text.contains("Paddle-Signature"), "{malformed}: {text}");
    }

    // Bodies that are not what Paddle sends, each signed.
    let text_plain = vec![
        ("content-type", "text/plain".to_owned()),
        signed(&body)[1].clone(),
    ];
    refused(
        post(&daemon, "/hooks/paddle", &text_plain, &body).await,
        415,
        "text/plain",
    );
    let mut no_id = event.clone();
    no_id.as_object_mut().unwrap().remove("event_id");
    let mut no_type = event.clone();
    no_type.as_object_mut().unwrap().remove("event_type");
    for (not_paddle, reason) in [
        ("{\"event_id\":".to_owned(), "not a JSON object"),
        ("[1, 2]".to_owned(), "not a JSON object"),
        (no_type.to_string(), "no `event_type`"),
        (no_id.to_string(), "no `event_id`"),
    ] {
        let text = refused(
            post(&daemon, "/hooks/paddle", &signed(&not_paddle), &not_paddle).await,
            400,
            reason,
        );
        assert!(text.contains(reason), "{text}");
    }
    // A GET: Paddle makes no handshake.
    let get = client()
        .get(daemon.url("/hooks/paddle"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(
        daemon.plugin_calls("paddle"),
        2,
        "no refused request reached the plugin"
    );

    // Queued: stored once per `event_id`, however often Paddle sends it.
    let (status, text) = post(&daemon, "/hooks/paddle-queue", &signed(&body), &body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"accepted": [EVENT_ID]})
    );
    let (status, text) = post(&daemon, "/hooks/paddle-queue", &signed(&body), &body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["duplicates"],
        json!([EVENT_ID])
    );
    daemon.wait_plugin_calls("paddle-queue", 1);
}

/// `wirehook sign --provider plugin:paddle-js` signs a Paddle event as the
/// daemon checks it.
#[tokio::test]
async fn wirehook_sign_makes_requests_paddle_js_accepts() {
    let daemon = daemon();
    let wasm = plugin_wasm("paddle-js");
    let plugin = ("paddle-js", wasm.as_path());
    let event = completed();
    let seen = signed_accepted_forged_refused(
        &daemon,
        "/hooks/paddle",
        plugin,
        SECRET_KEY,
        &event.to_string(),
    )
    .await;
    assert_eq!(seen["kind"], "transaction.completed", "{seen}");
    assert_eq!(seen["source"]["delivery_id"], EVENT_ID);
    assert_eq!(seen["raw_json"], event);
}
