//! Refusals that hold for every provider: 413 over `max_body_bytes`, 415
//! for a body that is not JSON, 403 for an address outside `allow_ips`
//! (with `X-Forwarded-For` believed only from `server.trusted_proxies`),
//! 405 for a method the route does not take. Each is a short JSON error
//! and one log line naming route, reason and remote, and no plugin runs.

use serde_json::Value;

use crate::fixtures::{META_SECRET, builder, meta_signature, meta_text_message, post};
use crate::harness::{Daemon, DaemonBuilder, Route};

async fn refused(daemon: &Daemon, route: &str, n: usize, response: reqwest::Response, status: u16) {
    assert_eq!(response.status(), status);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"].is_string(), "{error}");
    let line = daemon.wait_refused(route, n);
    assert_eq!(line["status"], status);
    assert!(
        line["reason"].is_string() && line["remote"].is_string(),
        "{line}"
    );
    assert!(
        !line.to_string().contains(META_SECRET),
        "secret in log: {line}"
    );
}

#[tokio::test]
async fn too_large_is_413_and_not_json_is_415() {
    let daemon = builder().server_settings("max_body_bytes = 2048").start();
    // Signed correctly, but too large.
    let mut big = meta_text_message();
    big["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "x".repeat(4096).into();
    let body = big.to_string();
    let response = post(
        &daemon,
        "/hooks/meta",
        &[("X-Hub-Signature-256".into(), meta_signature(&body))],
        &body,
    )
    .await;
    refused(&daemon, "meta", 1, response, 413).await;

    // Signed correctly, but sent as a form.
    let body = meta_text_message().to_string();
    let response = crate::harness::client()
        .post(daemon.url("/hooks/meta"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    refused(&daemon, "meta", 2, response, 415).await;

    // Signed correctly, but not JSON at all: 400.
    let body = "entry=1";
    let response = post(
        &daemon,
        "/hooks/meta",
        &[("X-Hub-Signature-256".into(), meta_signature(body))],
        body,
    )
    .await;
    refused(&daemon, "meta", 3, response, 400).await;

    // The same limit for a body sent in chunks, with no length up front.
    let response = chunked_post(
        &daemon,
        "/hooks/standard",
        &[vec![b' '; 1500], vec![b' '; 1500]],
    );
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    daemon.wait_refused("standard", 1);
    assert_eq!(
        daemon.plugin_calls("meta") + daemon.plugin_calls("standard"),
        0
    );
}

/// A chunked POST over a raw connection (clients set Content-Length when
/// they can); returns the response head.
fn chunked_post(daemon: &Daemon, path: &str, chunks: &[Vec<u8>]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(daemon.addr).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        daemon.addr
    )
    .into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = stream.write_all(&request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn allowlisted(server: &str) -> Daemon {
    DaemonBuilder::new("")
        .route(
            Route::hook("listed", "goflow")
                .secret("env:T_GOFLOW")
                .value("allow_ips", r#"["203.0.113.0/24"]"#)
                .plugins(&["probe"])
                .respond(),
        )
        .plugin("probe")
        .env("T_GOFLOW", "tok")
        .server_settings(server)
        .start()
}

async fn from_forwarded(daemon: &Daemon, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = crate::harness::client()
        .post(daemon.url("/hooks/listed"))
        .header("authorization", "Token tok")
        .json(&crate::goflow::call_webhook("CU001"));
    if let Some(hops) = forwarded_for {
        request = request.header("x-forwarded-for", hops);
    }
    request.send().await.unwrap()
}

/// Without trusted proxies, `X-Forwarded-For` is the client's word: the
/// address is the peer's (127.0.0.1), outside the list.
#[tokio::test]
async fn allowlist_ignores_forwarded_for_from_untrusted_peers() {
    let daemon = allowlisted("");
    let response = from_forwarded(&daemon, Some("203.0.113.7")).await;
    refused(&daemon, "listed", 1, response, 403).await;
    let line = daemon.wait_refused("listed", 1);
    assert_eq!(line["remote"], "127.0.0.1");
    let response = from_forwarded(&daemon, None).await;
    refused(&daemon, "listed", 2, response, 403).await;
    assert_eq!(daemon.plugin_calls("listed"), 0);
}

/// Behind a trusted proxy, the nearest untrusted hop is the client.
#[tokio::test]
async fn allowlist_believes_forwarded_for_from_trusted_proxies() {
    let daemon = allowlisted(r#"trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]"#);
    let response = from_forwarded(&daemon, Some("203.0.113.7")).await;
    assert_eq!(response.status(), 200);
    // A client-supplied hop before the proxies' own does not help.
    let response = from_forwarded(&daemon, Some("203.0.113.7, 198.51.100.1, 10.1.2.3")).await;
    refused(&daemon, "listed", 1, response, 403).await;
    assert_eq!(daemon.wait_refused("listed", 1)["remote"], "198.51.100.1");
    // No header: the proxy itself, which is not on the list.
    let response = from_forwarded(&daemon, None).await;
    refused(&daemon, "listed", 2, response, 403).await;
    assert_eq!(daemon.plugin_calls("listed"), 1);
}

#[tokio::test]
async fn get_is_405_where_there_is_no_handshake() {
    let daemon = builder().start();
    let response = crate::harness::client()
        .get(daemon.url("/hooks/oneroute?hub.mode=subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    refused(&daemon, "oneroute", 1, response, 405).await;
}
