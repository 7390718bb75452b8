//! The example plugins in every language give the Rust examples' replies,
//! byte for byte, for the same events, hostile ones included: huge strings,
//! astral characters and combining marks, escapes, whitespace that the
//! languages' own `trim` and `split` disagree on, missing fields.
//!
//! One daemon serves every language's `order-status` (through a goflow
//! route, and a Shopify route for the `order` variant) and `router`
//! (through a Meta route), and its compilation cache is
//! shared with the other tests, so the large Python and JavaScript
//! components are compiled once per cache.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::fixtures::{META_SECRET, meta_signature, meta_text_message};
use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route, shared_cache_dir};

/// The suffix of each language's variant; Rust's has none and is the
/// reference.
const LANGUAGES: &[&str] = &["", "-py", "-js", "-c"];

const GOFLOW_TOKEN: &str = "conformance-token";
const SHOPIFY_SECRET: &str = "conformance-shopify-secret";

/// Large enough to carry a string close to it, small enough to keep the
/// suite quick.
const MAX_BODY_BYTES: usize = 256 * 1024;

fn daemon() -> Daemon {
    let mut grants = String::new();
    for suffix in LANGUAGES {
        grants.push_str(&format!("\n[plugin.router{suffix}]\nkv = true\n"));
    }
    let mut builder = DaemonBuilder::new(&grants);
    for suffix in LANGUAGES {
        let (orders, router) = (format!("order-status{suffix}"), format!("router{suffix}"));
        builder = builder
            .route(
                Route::hook(&format!("orders{suffix}"), "goflow")
                    .secret("env:T_GOFLOW")
                    .plugins(&[&orders])
                    .respond(),
            )
            .route(
                Route::hook(&format!("shop{suffix}"), "shopify")
                    .secret("env:T_SHOPIFY")
                    .plugins(&[&orders])
                    .respond(),
            )
            .route(
                Route::hook(&router, "meta")
                    .secret("env:T_META")
                    .plugins(&[&router])
                    .respond(),
            )
            .plugin(&orders)
            .plugin(&router);
    }
    builder
        .server_settings(&format!("max_body_bytes = {MAX_BODY_BYTES}"))
        // Replies are what is compared here, not speed: a deadline that a
        // busy test machine could miss would only add noise.
        .plugins_settings(&format!(
            "cache_dir = {:?}\ntimeout_ms = 30000",
            shared_cache_dir()
        ))
        .env("T_GOFLOW", GOFLOW_TOKEN)
        .env("T_META", META_SECRET)
        .env("T_SHOPIFY", SHOPIFY_SECRET)
        .start()
}

/// Status and body of one JSON request.
async fn send(
    daemon: &Daemon,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut all = vec![("content-type", "application/json".to_owned())];
    all.extend_from_slice(headers);
    crate::harness::provider::post(daemon, path, &all, body).await
}

/// Sends `body` to every language's route and asserts each answers as the
/// Rust plugin did; returns Rust's answer.
async fn same_everywhere(
    daemon: &Daemon,
    route: &str,
    headers: &[(&str, String)],
    body: &str,
    case: &str,
) -> (u16, String) {
    let reference = send(daemon, &format!("/hooks/{route}"), headers, body).await;
    for suffix in &LANGUAGES[1..] {
        let answer = send(daemon, &format!("/hooks/{route}{suffix}"), headers, body).await;
        assert!(
            answer == reference,
            "{route}{suffix}, {case}: answered {} {:.300}\nRust answered {} {:.300}",
            answer.0,
            answer.1,
            reference.0,
            reference.1
        );
    }
    reference
}

/// Goflow bodies: the order number as a result, as input text, both,
/// neither, and hostile ones, as raw JSON text so escapes reach the
/// provider exactly as written.
fn order_cases() -> Vec<(String, String)> {
    let json = |value: Value| value.to_string();
    let huge = "CU001 ".repeat((MAX_BODY_BYTES - 2048) / 6);
    let mut cases: Vec<(String, String)> = [
        "CU001",
        "CU002",
        "CU003",
        "XX999",
        " CU001\t",
        "cu001",
        "",
        "   ",
        "say \"hi\" \\ / \u{0}\u{1}\u{1f}\u{7f}\n\r\t\u{8}\u{c}",
        // Astral characters, a combining mark, an RTL mark, ZWJ sequences.
        "CU001\u{301} 👩‍👩‍👧 𝕮𝖀 \u{200f}ءا \u{10ffff}",
        // Whitespace the languages' own trim functions disagree on: Rust
        // trims NEL and the Unicode spaces, not BOM or the ASCII separators.
        "\u{85}CU001\u{3000}",
        // Trailing: ComponentizeJS 0.23 drops a *leading* U+FEFF from every
        // string it hands a plugin (see docs/plugins.md).
        "CU001\u{feff}",
        "\u{1f}CU002\u{1c}",
        "\u{a0}\u{2028}CU003\u{2029}\u{202f}",
        "\u{180e}CU001",
    ]
    .iter()
    .map(|order| ((*order).to_owned(), json(call_webhook(order))))
    .collect();
    cases.extend([
        (
            "huge".to_owned(),
            json(json!({"results": {"order": {"value": huge}}})),
        ),
        (
            "input only".to_owned(),
            json(json!({"contact": {"uuid": "c1"}, "input": {"text": "CU002"}})),
        ),
        (
            "empty result, input".to_owned(),
            json(json!({"results": {"order": {"value": " "}}, "input": {"text": "CU003"}})),
        ),
        (
            "no results, no input".to_owned(),
            json(json!({"flow": {"uuid": "f"}})),
        ),
        ("empty object".to_owned(), "{}".to_owned()),
        (
            "escaped surrogate pair".to_owned(),
            r#"{"results":{"order":{"value":"\ud83d\ude00CU001"}},"input":{"text":"\u0043U002"}}"#
                .to_owned(),
        ),
        (
            "escaped controls".to_owned(),
            r#"{"results":{"order":{"value":"\u0000\b\f\u001f\u007f\u2028"}}}"#.to_owned(),
        ),
        (
            "lone surrogate escape".to_owned(),
            r#"{"results":{"order":{"value":"\ud800CU001"}}}"#.to_owned(),
        ),
        (
            "reversed surrogate escapes".to_owned(),
            r#"{"results":{"order":{"value":"\udc00\ud800"}}}"#.to_owned(),
        ),
        (
            "non-string order".to_owned(),
            r#"{"results":{"order":{"value":17}},"input":{"text":["CU001"]}}"#.to_owned(),
        ),
    ]);
    cases
}

/// Shopify orders: each status the plugins tell apart, missing ones, and
/// order numbers no shop would send but a body may hold (strings with
/// escapes, astral characters, controls).
fn shop_orders() -> Vec<(String, String)> {
    let order = |number: Value, financial: Value, fulfillment: Value| {
        json!({
            "id": 820982911946154508u64,
            "order_number": number,
            "financial_status": financial,
            "fulfillment_status": fulfillment,
            "currency": "USD",
            "total_price": "403.00",
            "customer": {"id": 1, "first_name": "Ann", "last_name": "Lee"},
            "line_items": [{"id": 2, "title": "Aviator sunglasses", "quantity": 1, "price": "199.00"}],
        })
        .to_string()
    };
    let mut cases = vec![
        (
            "fulfilled".to_owned(),
            order(json!(1001), json!("paid"), json!("fulfilled")),
        ),
        (
            "refunded".to_owned(),
            order(json!(1002), json!("refunded"), Value::Null),
        ),
        (
            "voided".to_owned(),
            order(json!(1003), json!("voided"), json!("partial")),
        ),
        (
            "pending".to_owned(),
            order(json!(1004), json!("pending"), Value::Null),
        ),
        (
            "no statuses".to_owned(),
            order(json!(1005), Value::Null, Value::Null),
        ),
        (
            "FULFILLED".to_owned(),
            order(json!(1006), json!("paid"), json!("FULFILLED")),
        ),
    ];
    for number in [
        "say \"hi\" \\ / \u{0}\u{1}\u{1f}\u{7f}\n\r\t\u{8}\u{c}",
        "CU001\u{301} 👩‍👩‍👧 𝕮𝖀 \u{200f}ءا \u{10ffff}",
        " 1007\u{feff} ",
        "\u{2028}\u{2029}",
    ] {
        cases.push((
            format!("number {number:?}"),
            order(json!(number), json!("paid"), Value::Null),
        ));
    }
    cases
}

fn shopify_headers(body: &str, id: usize) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SHOPIFY_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("x-shopify-hmac-sha256", signature),
        ("x-shopify-topic", "orders/updated".to_owned()),
        ("x-shopify-webhook-id", format!("conformance-{id}")),
    ]
}

/// Message texts for the router: `None` is a message without text (an
/// image without caption).
fn router_texts() -> Vec<Option<String>> {
    let texts = [
        "Sales please",
        "  salesforce question",
        "HELP!",
        "support",
        "I need sales",
        "",
        "SALES\u{301}",
        "sales😀",
        "😀 sales",
        "\u{85}sales",
        "sales\u{feff}",
        "\u{1f}help",
        "\u{3000}support\u{3000}desk",
        "ＳＡＬＥＳ",
        "İhelp",
        "Σales",
        "s\u{301}ales",
        "help\u{0}me",
        "\u{10ffff}",
        "support",
        "sales",
    ];
    let mut texts: Vec<Option<String>> = texts.iter().map(|t| Some((*t).to_owned())).collect();
    texts.push(None);
    texts.push(Some(format!(
        "support {}",
        "é\u{301}🙂".repeat((MAX_BODY_BYTES - 4096) / 9)
    )));
    texts
}

/// A Meta text message (or image, for `None`) with its own id, signed.
fn meta_message(id: usize, text: Option<&str>) -> (Vec<(&'static str, String)>, String) {
    let mut body = meta_text_message();
    let message = &mut body["entry"][0]["changes"][0]["value"]["messages"][0];
    message["id"] = json!(format!("wamid.conformance.{id}"));
    match text {
        Some(text) => message["text"]["body"] = json!(text),
        None => {
            message["type"] = json!("image");
            message.as_object_mut().unwrap().remove("text");
            message["image"] = json!({"mime_type": "image/jpeg", "id": "1003383421387256"});
        }
    }
    let body = body.to_string();
    (vec![("x-hub-signature-256", meta_signature(&body))], body)
}

#[tokio::test]
async fn every_language_answers_as_rust_does() {
    let daemon = daemon();
    let token = [("authorization", format!("Token {GOFLOW_TOKEN}"))];

    for (case, body) in order_cases() {
        let (status, reply) = same_everywhere(&daemon, "orders", &token, &body, &case).await;
        // Every case, the malformed ones too, reaches the plugins and is
        // answered: none is refused as undecodable.
        assert_eq!(status, 200, "{case:?}: {reply:.200}");
        if case == "CU001" {
            assert_eq!(reply, r#"{"number":"CU001","status":"Shipped"}"#);
        }
        if case == "huge" {
            assert!(
                reply.ends_with(r#"CU001","status":"Unknown"}"#),
                "{reply:.200}"
            );
        }
    }

    for (id, (case, body)) in shop_orders().into_iter().enumerate() {
        let headers = shopify_headers(&body, id);
        let (status, reply) = same_everywhere(&daemon, "shop", &headers, &body, &case).await;
        assert_eq!(status, 200, "{case:?}: {reply:.200}");
        let expected = match case.as_str() {
            "fulfilled" => r#"{"number":"1001","status":"Shipped"}"#,
            "refunded" => r#"{"number":"1002","status":"Cancelled"}"#,
            "voided" => r#"{"number":"1003","status":"Cancelled"}"#,
            "pending" => r#"{"number":"1004","status":"Pending"}"#,
            "FULFILLED" => r#"{"number":"1006","status":"Pending"}"#,
            _ => continue,
        };
        assert_eq!(reply, expected, "{case}");
    }

    let mut replies = Vec::new();
    for (id, text) in router_texts().iter().enumerate() {
        let (headers, body) = meta_message(id, text.as_deref());
        let case = format!("message {id}: {:.40?}", text);
        let (status, reply) = same_everywhere(&daemon, "router", &headers, &body, &case).await;
        assert_eq!(status, 200, "{case}: {reply}");
        replies.push(reply);
    }
    // Counts went up per destination, through each plugin's own KV.
    assert_eq!(replies[0], r#"{"route":"sales","count":1}"#);
    assert_eq!(replies[2], r#"{"route":"support","count":1}"#);
    assert_eq!(replies[4], r#"{"route":"default","count":1}"#);
    assert_eq!(replies[19], r#"{"route":"support","count":5}"#);

    // A status update is nothing the router answers.
    let body = crate::fixtures::meta_status().to_string();
    let headers = [("x-hub-signature-256", meta_signature(&body))];
    let (status, reply) = same_everywhere(&daemon, "router", &headers, &body, "status").await;
    assert_eq!((status, reply.as_str()), (204, ""));

    // Nobody trapped or failed along the way.
    let failures = daemon.log_lines(|l| l["message"] == "plugin failed event");
    assert!(failures.is_empty(), "{failures:?}");

    // The counts were in KV, not in the instances: they survive a restart
    // (which loads every plugin from the compilation cache).
    let mut daemon = daemon;
    assert!(daemon.terminate().success());
    daemon.spawn();
    let (headers, body) = meta_message(1000, Some("sales again"));
    let (_, reply) = same_everywhere(&daemon, "router", &headers, &body, "after restart").await;
    assert_eq!(reply, r#"{"route":"sales","count":8}"#);
}
