//! A goflow "Call Webhook" step asking `order-status` for an order.

use serde_json::{Value, json};

use crate::harness::{Daemon, DaemonBuilder, Route};

const TOKEN: &str = "flow-token-7f3a";

fn daemon() -> Daemon {
    let route = Route::new("orders", "/hooks/orders", "goflow")
        .secret("env:TEST_GOFLOW_TOKEN")
        .plugins(&["order-status"])
        .mode("respond");
    DaemonBuilder::new("")
        .route(route)
        .plugin("order-status")
        .env("TEST_GOFLOW_TOKEN", TOKEN)
        .start()
}

/// The body RapidPro-style engines send from a "Call Webhook" step.
pub fn call_webhook(order: &str) -> Value {
    json!({
        "contact": {"uuid": "5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f", "name": "Ben Haggerty", "urn": "tel:+12065551212"},
        "flow": {"uuid": "9de3663f-c5c5-4c92-9f45-ecbc09abcc85", "name": "Order Status Checker"},
        "path": [{"node_uuid": "6a4a1ec3-4c4f-4c4c-bd5a-1a1e28ab1e52", "arrived_on": "2026-11-25T10:00:00.000000Z"}],
        "results": {"order": {"value": order, "category": "Has Text", "input": order, "name": "Order"}},
        "run": {"uuid": "0a8e0d4b-2f0e-4f0e-9b7e-5b3b2c1d0e9f", "created_on": "2026-11-25T10:00:00.000000Z"},
        "input": {"text": order, "urn": "tel:+12065551212"},
        "channel": {"uuid": "1c4b7a2e-8b6f-4f0e-9b7e-5b3b2c1d0e9f", "name": "WhatsApp"}
    })
}

#[tokio::test]
async fn order_status_answers_each_order() {
    let daemon = daemon();
    let client = crate::harness::client();
    for (order, status) in [
        ("CU001", "Shipped"),
        ("CU002", "Pending"),
        ("CU003", "Cancelled"),
        ("XX999", "Unknown"),
    ] {
        let response = client
            .post(daemon.url("/hooks/orders"))
            .header("Authorization", format!("Token {TOKEN}"))
            .json(&call_webhook(order))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "order {order}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply, json!({"number": order, "status": status}));
    }
    daemon.wait_plugin_calls("orders", 4);
    // Respond routes are in the delivery log too, with their replies.
    daemon.wait_until(|lines| {
        let logged: u64 = lines
            .iter()
            .filter(|l| l["message"] == "responses logged")
            .filter_map(|l| l["rows"].as_u64())
            .sum();
        logged >= 4
    });
    let records = daemon.cli_json(&["events", "--route", "orders", "--json"]);
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r["status"] == "responded"));
    // Logged in the background, so in any order.
    assert!(
        records
            .iter()
            .any(|r| r["reply"] == r#"{"number":"CU001","status":"Shipped"}"#),
        "{records:?}"
    );
}

#[tokio::test]
async fn wrong_or_missing_token_is_refused_before_any_plugin() {
    let daemon = daemon();
    let client = crate::harness::client();
    let requests = [
        client
            .post(daemon.url("/hooks/orders"))
            .header("Authorization", "Token not-the-token"),
        client
            .post(daemon.url("/hooks/orders"))
            .header("Authorization", format!("Token {TOKEN}x")),
        client.post(daemon.url("/hooks/orders")),
    ];
    for (i, request) in requests.into_iter().enumerate() {
        let response = request.json(&call_webhook("CU001")).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
        let line = daemon.wait_refused("orders", i + 1);
        assert_eq!(line["status"], 401);
        assert!(!line.to_string().contains(TOKEN), "secret in log: {line}");
    }
    assert_eq!(daemon.plugin_calls("orders"), 0);
}

#[tokio::test]
async fn unknown_path_and_wrong_method_are_refused() {
    let daemon = daemon();
    let client = crate::harness::client();
    let response = client.post(daemon.url("/hooks/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = client
        .get(daemon.url("/hooks/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

/// A flow's webhook step written to send a form: accepted where the route
/// says `form = true`, its fields a JSON object in the event's raw JSON;
/// 415 on a route that does not.
#[tokio::test]
async fn a_form_route_takes_form_bodies_and_a_json_route_does_not() {
    let form_route = Route::new("form-orders", "/hooks/form-orders", "goflow")
        .secret("env:TEST_GOFLOW_TOKEN")
        .plugins(&["order-status"])
        .value("form", "true")
        .respond();
    let plain = Route::new("orders", "/hooks/orders", "goflow")
        .secret("env:TEST_GOFLOW_TOKEN")
        .plugins(&["order-status"])
        .respond();
    let probe = Route::new("form-probe", "/hooks/form-probe", "goflow")
        .secret("env:TEST_GOFLOW_TOKEN")
        .plugins(&["probe"])
        .value("form", "true")
        .respond();
    let daemon = DaemonBuilder::new("")
        .route(form_route)
        .route(plain)
        .route(probe)
        .plugin("order-status")
        .plugin("probe")
        .env("TEST_GOFLOW_TOKEN", TOKEN)
        .start();
    let client = crate::harness::client();
    let post = |path: &str, token: &str, body: &'static str| {
        client
            .post(daemon.url(path))
            .header("Authorization", format!("Token {token}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let body = "input=CU003+&tag=a&tag=b%26c";
    let response = post("/hooks/form-orders", TOKEN, body).await.unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply, json!({"number": "CU003", "status": "Cancelled"}));

    let response = post("/hooks/orders", TOKEN, body).await.unwrap();
    assert_eq!(response.status(), 415);
    let response = post("/hooks/form-orders", "not-the-token", body)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // JSON still reaches the form route.
    let response = client
        .post(daemon.url("/hooks/form-orders"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(daemon.plugin_calls("orders"), 0);

    // The plugin's event holds the fields in order, the repeated one as
    // an array.
    let response = post("/hooks/form-probe", TOKEN, body).await.unwrap();
    assert_eq!(response.status(), 200);
    let event: Value = response.json().await.unwrap();
    assert_eq!(
        event["raw_json"].to_string(),
        r#"{"input":"CU003 ","tag":["a","b&c"]}"#
    );
    assert_eq!(event["payload"]["variables"]["input"], "CU003 ");
}
