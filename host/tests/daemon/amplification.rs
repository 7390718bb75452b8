//! What an unauthenticated or hostile sender can make a request cost.
//!
//! A bad signature is refused for about the price of hashing the body:
//! OneRoute's second, re-serialised check runs only under
//! `server.max_slow_checks`, and over it the request is refused 503 at
//! once (counted as `reason="busy"`). A signed body holding many events
//! decodes to a bounded number of events whose stored raw JSON is about
//! the body's size, not a copy of the body per event; over the cap, 413.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha512;

use crate::exposition::{metrics_url, scrape};
use crate::fixtures::{ONEROUTE_SECRET, builder, meta_signature, meta_text_message};
use crate::harness::{Daemon, client};

/// Most events one request may carry (`MAX_EVENTS_PER_REQUEST`).
const MAX_EVENTS: usize = 1000;

fn oneroute_signature(body: &str) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(ONEROUTE_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn post_oneroute(
    client: &reqwest::Client,
    daemon: &Daemon,
    body: String,
    signature: String,
) -> (u16, Value) {
    let response = client
        .post(daemon.url("/hooks/oneroute"))
        .header("content-type", "application/json")
        .header("x-oneroute-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A OneRoute message with `filler` bytes of content: sent compact (as
/// OneRoute sends it, so its raw bytes are what was signed) or
/// pretty-printed (so only the re-serialised check can prove it).
fn oneroute_message(id: &str, filler: usize) -> (String, String) {
    let body = json!({
        "event": "newMessage",
        "message": {"id": id, "content": "x".repeat(filler), "contentType": "TEXT"},
        "conversation": {"id": "c-1", "customer": {"id": "ana@example.com", "name": "Ana"}},
    });
    (
        body.to_string(),
        serde_json::to_string_pretty(&body).unwrap(),
    )
}

fn busy_count(samples: &crate::exposition::Samples, route: &str, reason: &str) -> f64 {
    samples
        .get(&format!(
            r#"wirehook_verification_failures_total{{route="{route}",reason="{reason}"}}"#
        ))
        .copied()
        .unwrap_or(0.0)
}

/// With no place for slow checks, every request that would need one is
/// refused 503 at once and counted, however many come together, while a
/// request signed as sent needs none and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_bound_slow_checks_are_refused_at_once() {
    let daemon = builder()
        .server_settings("metrics_listen = \"127.0.0.1:0\"\nmax_slow_checks = 0")
        .start();
    let client = client();
    let (compact, pretty) = oneroute_message("m-1", 200_000);
    let forged = "ab".repeat(64);
    let flood: Vec<_> = (0..16)
        .map(|i| {
            let (client, body, signature) = (client.clone(), pretty.clone(), forged.clone());
            let url = daemon.url("/hooks/oneroute");
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-oneroute-signature", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().get("retry-after").cloned();
                (
                    i,
                    response.status().as_u16(),
                    retry_after,
                    response.json::<Value>().await.unwrap(),
                )
            })
        })
        .collect();
    for request in flood {
        let (i, status, retry_after, error) = request.await.unwrap();
        assert_eq!(status, 503, "flood request {i}: {error}");
        assert!(retry_after.is_some(), "flood request {i}: no Retry-After");
        assert!(
            error["error"].as_str().unwrap().contains("retry later"),
            "{error}"
        );
    }
    // Truly signed but re-spaced: it too would need the slow check.
    let (status, _) = post_oneroute(&client, &daemon, pretty, oneroute_signature(&compact)).await;
    assert_eq!(status, 503);
    // Signed as sent: the raw bytes match, no slow check.
    let (status, reply) = post_oneroute(
        &client,
        &daemon,
        compact.clone(),
        oneroute_signature(&compact),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    let samples = scrape(&client, &metrics_url(&daemon)).await;
    assert_eq!(
        busy_count(&samples, "oneroute", "busy"),
        17.0,
        "{samples:?}"
    );
    assert_eq!(busy_count(&samples, "oneroute", "unauthorized"), 0.0);
    daemon.wait_for_log(|l| {
        l["message"] == "request refused" && l["route"] == "oneroute" && l["status"] == 503
    });
}

/// Under the default bound, a flood of large bodies with bad signatures
/// is refused (401, or 503 when every place is taken) while other routes
/// keep answering, and a re-spaced body truly signed is still proven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature_floods_are_refused_and_others_served() {
    let daemon = builder()
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start();
    let client = client();
    let (compact, pretty) = oneroute_message("m-2", 900_000);
    let forged = "cd".repeat(64);
    let flood: Vec<_> = (0..12)
        .map(|_| {
            let (client, body, signature) = (client.clone(), pretty.clone(), forged.clone());
            let url = daemon.url("/hooks/oneroute");
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-oneroute-signature", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // Served while the flood is on.
    let body = meta_text_message().to_string();
    let response = client
        .post(daemon.url("/hooks/meta"))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for request in flood {
        let status = request.await.unwrap();
        assert!(status == 401 || status == 503, "{status}");
    }
    let samples = scrape(&client, &metrics_url(&daemon)).await;
    assert_eq!(
        busy_count(&samples, "oneroute", "busy") + busy_count(&samples, "oneroute", "unauthorized"),
        12.0,
        "{samples:?}"
    );
    let (status, reply) =
        post_oneroute(&client, &daemon, pretty, oneroute_signature(&compact)).await;
    assert_eq!(status, 200, "{reply}");
}

/// Bytes of raw JSON stored for `route`'s events, and how many events.
fn stored(daemon: &Daemon, route: &str) -> (u64, u64) {
    let db = daemon.config.parent().unwrap().join("data/wirehook.db");
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(b.raw_json)), 0)
         FROM events e LEFT JOIN event_bodies b ON b.id = e.id WHERE e.route = ?1",
        [route],
        |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
    )
    .map(|(count, bytes)| (bytes, count))
    .unwrap()
}

/// Meta's documented message, `messages` copies of it with their own
/// ids, and a large field in the envelope that is no event's own.
fn many_messages(messages: usize, padding: usize) -> String {
    let mut body = meta_text_message();
    let value = &mut body["entry"][0]["changes"][0]["value"];
    let message = value["messages"][0].clone();
    value["messages"] = (0..messages)
        .map(|i| {
            let mut message = message.clone();
            message["id"] = format!("wamid.many.{i}").into();
            message
        })
        .collect::<Vec<_>>()
        .into();
    body["padding"] = "p".repeat(padding).into();
    body.to_string()
}

/// 900 messages and a 500 KB envelope field: accepted, 900 events, and
/// the raw JSON stored for all of them together is less than the body
/// (each event keeps its own message and the envelope's own fields). One
/// event over the cap: 413, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_event_bodies_store_about_their_size() {
    let daemon = builder().start();
    let client = client();
    let send = |body: String| {
        let request = client
            .post(daemon.url("/hooks/meta-queue"))
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", meta_signature(&body))
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let body = many_messages(900, 500_000);
    let (status, reply) = send(body.clone()).await;
    assert_eq!(status, 202, "{reply}");
    let (bytes, count) = stored(&daemon, "meta-queue");
    assert_eq!(count, 900);
    assert!(
        bytes < body.len() as u64,
        "{bytes} bytes stored for a {}-byte body",
        body.len()
    );

    let (status, error) = send(many_messages(MAX_EVENTS + 1, 10)).await;
    assert_eq!(status, 413, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("events"),
        "{error}"
    );
    daemon.wait_for_log(|l| {
        l["message"] == "request refused" && l["route"] == "meta-queue" && l["status"] == 413
    });
    assert_eq!(stored(&daemon, "meta-queue").1, 900);
}
