//! Truora WhatsApp Flows: JWT bodies, HS256 only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::harness::{Daemon, DaemonBuilder, Route, now};

const SECRET: &str = "c48863adab6b101b79f08ddb2cfe1b1c3f2ff7eb38fa01a14904dde971c2193b";

fn route(name: &str, mode: &str) -> Route {
    Route::new(name, "/hooks/truora", "truora")
        .secret("env:TEST_TRUORA_SECRET")
        .plugins(&["probe"])
        .mode(mode)
}

fn daemon() -> Daemon {
    DaemonBuilder::new("")
        .route(route("truora", "respond"))
        .plugin("probe")
        .env("TEST_TRUORA_SECRET", SECRET)
        .start()
}

fn claims(event: &str) -> Value {
    json!({
        "event_id": format!("evt-{event}"),
        "event": event,
        "flow_id": "IPFa1b2c3",
        "flow_name": "Onboarding",
        "phone_number": "+573001234567",
        "user_id": "user-42",
        "variables": {"document_number": "1010", "score": 7},
        "iat": now(),
        "exp": now() + 300,
    })
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn post(daemon: &Daemon, body: String) -> reqwest::Response {
    crate::harness::client()
        .post(daemon.url("/hooks/truora"))
        .header("content-type", "application/jwt")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_flow_event_reaches_the_plugin_typed() {
    let daemon = daemon();
    for (event, stage) in [
        ("Started", "started"),
        ("Success", "succeeded"),
        ("Failed", "failed"),
    ] {
        let token = sign(&claims(event), Algorithm::HS256, SECRET);
        let response = post(&daemon, token).await;
        assert_eq!(response.status(), 200, "{event}");
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["kind"], event);
        assert_eq!(seen["source"]["provider"], "truora");
        assert_eq!(seen["source"]["route"], "truora");
        assert_eq!(seen["source"]["delivery_id"], format!("evt-{event}"));
        let payload = &seen["payload"];
        assert_eq!(payload["type"], "flow");
        assert_eq!(payload["stage"], stage);
        assert_eq!(payload["flow_id"], "IPFa1b2c3");
        assert_eq!(payload["flow_name"], "Onboarding");
        assert_eq!(payload["contact"]["phone"], "+573001234567");
        assert_eq!(payload["contact"]["id"], "user-42");
        assert_eq!(payload["variables"]["document_number"], "1010");
        assert_eq!(payload["variables"]["score"], "7");
        assert_eq!(seen["raw_json"]["event"], event);
    }
}

#[tokio::test]
async fn forged_unsigned_foreign_and_expired_tokens_are_refused() {
    let daemon = daemon();
    let good = sign(&claims("Success"), Algorithm::HS256, SECRET);
    let (header, payload) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    // Same claims, signature of another key.
    let forged = sign(&claims("Success"), Algorithm::HS256, "not-the-secret");
    // Tampered claims under the original signature.
    let tampered = {
        let signature = good.rsplit('.').next().unwrap();
        let mut altered = claims("Success");
        altered["user_id"] = json!("someone-else");
        format!(
            "{header}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(altered.to_string())
        )
    };
    let alg_none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let hs512 = sign(&claims("Success"), Algorithm::HS512, SECRET);
    let mut stale = claims("Success");
    stale["exp"] = json!(now() - 3600);
    let expired = sign(&stale, Algorithm::HS256, SECRET);
    let mut early = claims("Success");
    early["nbf"] = json!(now() + 3600);
    let not_yet = sign(&early, Algorithm::HS256, SECRET);
    let cases = [
        ("forged", forged),
        ("tampered", tampered),
        ("alg none", alg_none),
        ("HS512", hs512),
        ("expired", expired),
        ("not yet valid", not_yet),
        ("not a JWT", r#"{"event":"Success"}"#.to_owned()),
        ("empty", String::new()),
    ];
    for (i, (case, body)) in cases.into_iter().enumerate() {
        let response = post(&daemon, body).await;
        assert_eq!(response.status(), 401, "{case}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].is_string(), "{case}: {error}");
        let line = daemon.wait_refused("truora", i + 1);
        assert!(!line.to_string().contains(SECRET), "secret in log: {line}");
    }
    assert_eq!(daemon.plugin_calls("truora"), 0);
}

#[tokio::test]
async fn queue_route_acknowledges_then_hands_the_event_over() {
    let daemon = DaemonBuilder::new("")
        .route(route("truora-queue", "queue"))
        .plugin("probe")
        .env("TEST_TRUORA_SECRET", SECRET)
        .start();
    let response = post(&daemon, sign(&claims("Started"), Algorithm::HS256, SECRET)).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"accepted": ["evt-Started"]}));
    daemon.wait_for_log(|l| {
        l["message"] == "plugin handled event"
            && l["route"] == "truora-queue"
            && l["delivery_id"] == "evt-Started"
    });
}
