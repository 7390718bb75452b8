//! Shopify through the real daemon, and WIT 0.1.0 beside 0.2.0: orders
//! signed as Shopify signs them (by code here, not wirehook's signer)
//! reach a 0.2.0 plugin typed and a 0.1.0 one as `other`; forged and
//! tampered requests are refused. Shopify sends no timestamp, so there is
//! no stale request to refuse: a replay carries the same
//! `X-Shopify-Webhook-Id`, which deduplication catches.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route};

const SECRET: &str = "shpss_0123456789abcdef0123456789ab";
const GOFLOW_TOKEN: &str = "flow-token-7f3a";

/// An `orders/paid` body in Shopify's shape (its sample order, trimmed).
const ORDER: &str = r##"{"id":820982911946154508,"email":"jon@example.com","order_number":1234,"name":"#9999","currency":"USD","financial_status":"paid","fulfillment_status":"fulfilled","subtotal_price":"388.00","total_price":"403.00","total_tax":"15.00","customer":{"id":115310627314723954,"first_name":"John","last_name":"Smith","phone":"+16135551212"},"line_items":[{"id":866550311766439020,"title":"Aviator sunglasses","quantity":2,"sku":"SKU2006-001","price":"199.00"}]}"##;

fn daemon() -> Daemon {
    let shop = |name: &str, plugin: &str| {
        Route::hook(name, "shopify")
            .secret("env:T_SHOPIFY")
            .plugins(&[plugin])
            .respond()
    };
    let flow = |name: &str, plugin: &str| {
        Route::hook(name, "goflow")
            .secret("env:T_GOFLOW")
            .plugins(&[plugin])
            .respond()
    };
    DaemonBuilder::new("")
        .route(shop("shop-probe", "probe"))
        .route(shop("shop", "order-status"))
        .route(shop("shop-v1", "order-status-v1"))
        .route(flow("orders", "order-status"))
        .route(flow("orders-v1", "order-status-v1"))
        .plugin("probe")
        .plugin("order-status")
        .plugin("order-status-v1")
        .env("T_SHOPIFY", SECRET)
        .env("T_GOFLOW", GOFLOW_TOKEN)
        .start()
}

/// Shopify's proof: base64 HMAC-SHA256 of the raw body.
fn signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

async fn post(
    daemon: &Daemon,
    route: &str,
    signature: &str,
    webhook_id: &str,
    body: &str,
) -> (u16, String) {
    let response = crate::harness::client()
        .post(daemon.url(&format!("/hooks/{route}")))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Hmac-Sha256", signature)
        .header("X-Shopify-Topic", "orders/paid")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Shop-Domain", "example.myshopify.com")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn ok_json(answer: (u16, String)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    serde_json::from_str(&answer.1).unwrap()
}

#[tokio::test]
async fn shopify_orders_reach_plugins_typed_and_forgeries_are_refused() {
    let daemon = daemon();
    let good = signature(SECRET, ORDER);
    let event = ok_json(post(&daemon, "shop-probe", &good, "b54557e4-0001", ORDER).await);
    assert_eq!(event["kind"], "orders/paid");
    assert_eq!(event["source"]["provider"], "shopify");
    assert_eq!(event["source"]["delivery_id"], "b54557e4-0001");
    let order = &event["payload"];
    assert_eq!(order["type"], "order");
    assert_eq!(order["id"], "820982911946154508");
    assert_eq!(order["number"], "1234");
    assert_eq!(order["financial_status"], "paid");
    assert_eq!(order["fulfillment_status"], "fulfilled");
    assert_eq!(
        (
            &order["currency"],
            &order["total"],
            &order["subtotal"],
            &order["tax"]
        ),
        (
            &json!("USD"),
            &json!("403.00"),
            &json!("388.00"),
            &json!("15.00")
        )
    );
    assert_eq!(order["contact"]["name"], "John Smith");
    assert_eq!(order["contact"]["phone"], "+16135551212");
    assert_eq!(
        order["line_items"],
        json!([{"id": "866550311766439020", "title": "Aviator sunglasses",
                "sku": "SKU2006-001", "quantity": 2, "price": "199.00"}])
    );
    assert_eq!(event["raw_json"]["email"], "jon@example.com");

    let forged = signature("not-the-secret", ORDER);
    let tampered = ORDER.replace("403.00", "4.03");
    for (signature, body) in [(forged.as_str(), ORDER), (good.as_str(), tampered.as_str())] {
        let (status, answer) = post(&daemon, "shop-probe", signature, "b54557e4-0002", body).await;
        assert_eq!(status, 401, "{answer}");
    }
    let (status, _) = post(&daemon, "shop-probe", "", "b54557e4-0003", ORDER).await;
    assert_eq!(status, 401);
    daemon.wait_plugin_calls("shop-probe", 1);
    assert_eq!(daemon.plugin_calls("shop-probe"), 1);
}

/// A plugin built for 0.1.0 answers beside plugins built for 0.2.0, in
/// the same daemon; an order, which 0.1.0 has no variant for, reaches it
/// as `other` with the order's JSON, while the 0.2.0 plugin gets it typed.
#[tokio::test]
async fn a_wit_0_1_0_plugin_answers_beside_0_2_0_ones() {
    let daemon = daemon();
    let client = crate::harness::client();
    for route in ["orders", "orders-v1"] {
        let response = client
            .post(daemon.url(&format!("/hooks/{route}")))
            .header("Authorization", format!("Token {GOFLOW_TOKEN}"))
            .json(&call_webhook("CU001"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{route}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(
            reply,
            json!({"number": "CU001", "status": "Shipped"}),
            "{route}"
        );
    }

    let good = signature(SECRET, ORDER);
    let typed = ok_json(post(&daemon, "shop", &good, "c0ffee-0001", ORDER).await);
    assert_eq!(typed, json!({"number": "1234", "status": "Shipped"}));
    let older = ok_json(post(&daemon, "shop-v1", &good, "c0ffee-0002", ORDER).await);
    assert_eq!(older["payload"], "other");
    assert_eq!(older["kind"], "orders/paid");
    let raw: Value = serde_json::from_str(older["raw_json"].as_str().unwrap()).unwrap();
    assert_eq!(raw, serde_json::from_str::<Value>(ORDER).unwrap());

    // `wirehook check` says which version each plugin targets.
    let output = daemon.cli(&["check"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for (plugin, version) in [
        ("order-status", "0.2.0"),
        ("order-status-v1", "0.1.0"),
        ("probe", "0.2.0"),
    ] {
        let line = format!("plugin `{plugin}`: wirehook:plugin@{version}");
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
    let failures = daemon.log_lines(|l| l["message"] == "plugin failed event");
    assert!(failures.is_empty(), "{failures:?}");
}
