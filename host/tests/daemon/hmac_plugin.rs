//! The `hmac-provider` fixture, the built-in `hmac` provider as a
//! provider plugin (the benchmarks' row 10), against the built-in itself
//! through the real daemon: the same requests, signed the generic way by
//! code here, get the same answers from both routes, accepted or refused.

use serde_json::{Value, json};

use crate::fixtures::hmac256;
use crate::harness::{Daemon, DaemonBuilder, Route, client};

const SECRET: &str = "hmac-route-secret-4e5f6a7b";

fn daemon() -> Daemon {
    let route = |name: &str, provider: &str| {
        Route::hook(name, provider)
            .secret("env:HMAC_SECRET")
            .plugins(&["probe"])
            .respond()
    };
    DaemonBuilder::new("")
        .route(route("built-in", "hmac"))
        .route(route("plugin", "plugin:hmac-provider"))
        .plugin("probe")
        .plugin("hmac-provider")
        .env("HMAC_SECRET", SECRET)
        .start()
}

fn signature(body: &str) -> String {
    hex::encode(hmac256(SECRET.as_bytes(), &[body.as_bytes()]))
}

/// The status and, for an answer, probe's echo of the event without its
/// source (which names the route and the provider).
async fn send(daemon: &Daemon, route: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut request = client()
        .post(daemon.url(&format!("/hooks/{route}")))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let mut answer: Value = response.json().await.unwrap_or(Value::Null);
    if status == 200 {
        answer.as_object_mut().unwrap().remove("source");
    }
    (status, answer)
}

/// What is sent (its name, headers and body) and the status both routes
/// must answer it with.
type Case<'a> = (&'a str, Vec<(&'a str, String)>, String, u16);

#[tokio::test]
async fn the_hmac_provider_plugin_answers_as_the_built_in_provider() {
    let daemon = daemon();
    let event = json!({"type": "order.status", "order": "CU002"}).to_string();
    let untyped = json!({"event": 7, "order": "CU001"}).to_string();
    let kindless = json!({"order": "CU003", "type": ""}).to_string();
    let signed = |body: &str| signature(body);
    let cases: Vec<Case> = vec![
        (
            "signed, typed",
            vec![
                ("content-type", "application/json".into()),
                ("x-signature", signed(&event)),
            ],
            event.clone(),
            200,
        ),
        (
            "signed, upper-case hex, kind from `event`",
            vec![("x-signature", signed(&untyped).to_uppercase())],
            untyped.clone(),
            200,
        ),
        (
            "signed, no kind",
            vec![
                ("content-type", "application/cloudevents+json".into()),
                ("x-signature", signed(&kindless)),
            ],
            kindless.clone(),
            200,
        ),
        ("unsigned", vec![], event.clone(), 401),
        (
            "signed for another body",
            vec![("x-signature", signed(&untyped))],
            event.clone(),
            401,
        ),
        (
            "not hex",
            vec![("x-signature", "zz".repeat(32))],
            event.clone(),
            401,
        ),
        (
            "signed, not JSON's content type",
            vec![
                ("content-type", "text/plain".into()),
                ("x-signature", signed(&event)),
            ],
            event.clone(),
            415,
        ),
        (
            "signed, not JSON",
            vec![("x-signature", signed("order=CU001"))],
            "order=CU001".to_owned(),
            400,
        ),
    ];
    for (case, headers, body, status) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let built_in = send(&daemon, "built-in", &headers, &body).await;
        let plugin = send(&daemon, "plugin", &headers, &body).await;
        assert_eq!(built_in.0, status, "{case}: built-in {built_in:?}");
        assert_eq!(plugin.0, status, "{case}: plugin {plugin:?}");
        if status == 200 {
            assert_eq!(plugin.1, built_in.1, "{case}");
            let raw: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(plugin.1["raw_json"], raw, "{case}");
        }
    }
    // The kinds, as the built-in takes them: `type`, else `event` (a
    // number printed), else `hmac`.
    let kind = |body: &str| {
        let body = body.to_owned();
        let daemon = &daemon;
        async move {
            let sig = signature(&body);
            send(daemon, "plugin", &[("x-signature", &sig)], &body)
                .await
                .1["kind"]
                .clone()
        }
    };
    assert_eq!(kind(&event).await, "order.status");
    assert_eq!(kind(&untyped).await, "7");
    assert_eq!(kind(&kindless).await, "hmac");
}
