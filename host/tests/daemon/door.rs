//! Attacks on the listener, against the real daemon with a low open-file
//! limit and short timeouts: heads sent a byte at a time or too large,
//! stalled and slow bodies, floods of idle connections, unfinished large bodies. Each is
//! cut or refused within a deadline while `/healthz` and valid signed
//! requests keep answering. Every connection a test opens is bounded in
//! number and every read in time.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::exposition::metrics_url;
use crate::fixtures::{builder, meta_signature, meta_text_message};
use crate::harness::Daemon;

/// The daemon's open-file limit in these tests: far below the flood.
const OPEN_FILES: u64 = 128;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // A connection of its own for every request, as a provider's
        // retries arriving during an attack would.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A daemon with every provider's route, `server` keys added, its
/// open-file limit lowered to `OPEN_FILES`.
fn door_daemon(server: &str) -> Daemon {
    let daemon = builder()
        .server_settings(&format!("metrics_listen = \"127.0.0.1:0\"\n{server}"))
        .start();
    daemon.limit_open_files(OPEN_FILES);
    daemon
}

/// A valid signed request answers 200 and `/healthz` answers.
async fn still_answers(daemon: &Daemon) {
    let body = meta_text_message().to_string();
    let response = client()
        .post(daemon.url("/hooks/meta"))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", meta_signature(&body))
        .body(body)
        .send()
        .await
        .expect("a valid request answered");
    assert_eq!(response.status(), 200);
    let response = client()
        .get(daemon.url("/healthz"))
        .send()
        .await
        .expect("/healthz answered");
    assert_eq!(response.status(), 200);
}

/// What a connection read before the daemon closed it (EOF or reset), or
/// `None` if it was still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The head of a POST to the Meta route with a body of `length` bytes
/// (`None`: chunked).
fn post_head(daemon: &Daemon, length: Option<usize>, signature: &str) -> String {
    let framing = match length {
        Some(length) => format!("Content-Length: {length}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    format!(
        "POST /hooks/meta HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\n{framing}\r\n\r\n",
        daemon.addr
    )
}

/// One sample of `/metrics`, `name{labels}` as written there.
async fn metric(daemon: &Daemon, sample: &str) -> f64 {
    let text = client()
        .get(metrics_url(daemon))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `sample` reads `value`, within a few seconds.
async fn wait_metric(daemon: &Daemon, sample: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = metric(daemon, sample).await;
        if now == value {
            return;
        }
        assert!(Instant::now() < deadline, "{sample} is {now}, not {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refusal_logged(daemon: &Daemon, reason: &str) -> Value {
    daemon.wait_for_log(|l| l["level"] == "WARN" && l["reason"] == reason)
}

#[tokio::test]
async fn heads_sent_a_byte_at_a_time_are_cut_by_the_header_timeout() {
    let daemon = door_daemon("header_timeout_ms = 1000");
    let mut slow = JoinSet::new();
    for _ in 0..20 {
        let addr = daemon.addr;
        slow.spawn(async move {
            let opened = Instant::now();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"POST /hooks/meta HTTP/1.1\r\nX-Slow: ")
                .await
                .unwrap();
            // A byte every 50 ms: a head that never ends, each byte well
            // within any per-read timeout.
            let mut buf = [0u8; 64];
            while opened.elapsed() < Duration::from_secs(10) {
                if stream.write_all(b"a").await.is_err() {
                    return Some(opened.elapsed());
                }
                let read = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf));
                if let Ok(Ok(0) | Err(_)) = read.await {
                    return Some(opened.elapsed());
                }
            }
            None
        });
    }
    while let Some(cut) = slow.join_next().await {
        let cut = cut.unwrap().expect("a slow head was still open after 10 s");
        assert!(
            cut >= Duration::from_millis(900) && cut < Duration::from_secs(6),
            "cut after {cut:?}"
        );
    }
    refusal_logged(&daemon, "header_timeout");

    // A head larger than the read buffer is refused, not held.
    let mut large = TcpStream::connect(daemon.addr).await.unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nX-Large: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    // The daemon may answer and close before reading it all.
    let _ = large.write_all(head.as_bytes()).await;
    let answer = until_closed(&mut large, Duration::from_secs(5))
        .await
        .expect("a large head is answered and closed");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    still_answers(&daemon).await;
}

#[tokio::test]
async fn stalled_and_slow_bodies_are_cut_and_a_steady_one_is_not() {
    let daemon = door_daemon("body_timeout_ms = 1000\nbody_min_bytes_per_sec = 2000");

    // Stalled: ten bytes of a thousand, then nothing.
    let opened = Instant::now();
    let mut stalled = TcpStream::connect(daemon.addr).await.unwrap();
    let head = post_head(&daemon, Some(1000), "sha256=00");
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[b' '; 10]).await.unwrap();
    let answer = until_closed(&mut stalled, Duration::from_secs(6))
        .await
        .expect("a stalled body was still open after 6 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(opened.elapsed() >= Duration::from_millis(900));

    // Slow: 100 bytes every 200 ms, a quarter of the minimum pace.
    let opened = Instant::now();
    let mut slow = TcpStream::connect(daemon.addr).await.unwrap();
    let head = post_head(&daemon, Some(60_000), "sha256=00");
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = loop {
        assert!(
            opened.elapsed() < Duration::from_secs(8),
            "a slow body was still open after 8 s"
        );
        if slow.write_all(&[b' '; 100]).await.is_err() {
            break until_closed(&mut slow, Duration::from_secs(5)).await;
        }
        if let Some(answer) = until_closed(&mut slow, Duration::from_millis(200)).await {
            break Some(answer);
        }
    };
    let answer = answer.expect("a cut body's connection closes");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let took = opened.elapsed();
    assert!(took >= Duration::from_millis(900), "cut after {took:?}");
    refusal_logged(&daemon, "body_timeout");

    // Steady: a signed 16 kB body in 2 kB pieces every 250 ms takes twice
    // the grace, at four times the minimum pace, and is answered.
    let mut message = meta_text_message();
    message["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] =
        "x".repeat(16_000).into();
    let body = message.to_string();
    let mut steady = TcpStream::connect(daemon.addr).await.unwrap();
    let head = post_head(&daemon, Some(body.len()), &meta_signature(&body));
    steady.write_all(head.as_bytes()).await.unwrap();
    for piece in body.as_bytes().chunks(2048) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        steady.write_all(piece).await.unwrap();
    }
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), steady.read_exact(&mut answer))
        .await
        .expect("a steady body answered within 10 s")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
}

#[tokio::test]
async fn a_flood_of_idle_connections_leaves_valid_requests_answering() {
    // Slow connections are not cut by time here: only the cap holds.
    let daemon = door_daemon("max_connections = 24\nheader_timeout_ms = 60000");
    let flood = |addr| async move {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: a")
            .await
            .ok()?;
        Some(stream)
    };
    // Far more than the cap and than the daemon's open-file limit, held.
    let mut held = Vec::new();
    for _ in 0..300 {
        held.extend(flood(daemon.addr).await);
    }
    // And more arriving all along, one every 10 ms.
    let addr = daemon.addr;
    let arriving = tokio::spawn(async move {
        let mut more = Vec::new();
        for _ in 0..500 {
            more.extend(flood(addr).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        more
    });
    for _ in 0..10 {
        still_answers(&daemon).await;
    }
    arriving.abort();
    let open = metric(&daemon, "wirehook_connections_open").await;
    assert!(open <= 24.0, "{open} connections open");
    let evicted = metric(
        &daemon,
        r#"wirehook_connections_refused_total{reason="evicted"}"#,
    )
    .await;
    assert!(evicted >= 300.0 - 24.0, "{evicted} evicted");
    // The cap kept the daemon within its descriptors.
    assert!(
        daemon
            .log_lines(|l| l["reason"] == "accept_error")
            .is_empty()
    );
    drop(held);
}

#[tokio::test]
async fn unfinished_bodies_hold_no_more_than_the_caps() {
    let daemon = door_daemon(
        "max_connections = 8\nmax_body_bytes = 65536\nmax_body_bytes_in_flight = 262544\nbody_timeout_ms = 10000\nbody_min_bytes_per_sec = 1000000",
    );
    let gauge = "wirehook_body_bytes_in_flight";
    let mut holders = Vec::new();
    // Announced is not held: a body that announces 64 KiB and sends
    // 1,000 bytes holds 1,000.
    let mut announcer = TcpStream::connect(daemon.addr).await.unwrap();
    let head = post_head(&daemon, Some(65_536), "sha256=00");
    announcer.write_all(head.as_bytes()).await.unwrap();
    announcer.write_all(&[b' '; 1000]).await.unwrap();
    wait_metric(&daemon, gauge, 1000.0).await;
    holders.push(announcer);
    // Three more bodies begun, nearly whole, never finished: with the
    // first they hold all of the cap but 400 bytes.
    for _ in 0..3 {
        let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
        let head = post_head(&daemon, Some(65_536), "sha256=00");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[b' '; 65_535]).await.unwrap();
        holders.push(stream);
    }
    holders[0].write_all(&[b' '; 64_535]).await.unwrap();
    wait_metric(&daemon, gauge, 262_140.0).await;

    // A fifth body, by length or in chunks, that brings more than the
    // 400 bytes left: 503 at once.
    let mut fifth = TcpStream::connect(daemon.addr).await.unwrap();
    let head = post_head(&daemon, Some(65_536), "sha256=00");
    fifth.write_all(head.as_bytes()).await.unwrap();
    fifth.write_all(&[b' '; 1000]).await.unwrap();
    let answer = until_closed(&mut fifth, Duration::from_secs(3))
        .await
        .expect("refused long before the body timeout");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: "), "{answer}");
    let mut chunked = TcpStream::connect(daemon.addr).await.unwrap();
    let mut request = post_head(&daemon, None, "sha256=00").into_bytes();
    request.extend_from_slice(b"3e8\r\n");
    request.extend_from_slice(&[b' '; 1000]);
    request.extend_from_slice(b"\r\n");
    chunked.write_all(&request).await.unwrap();
    let answer = until_closed(&mut chunked, Duration::from_secs(3))
        .await
        .expect("refused long before the body timeout");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    refusal_logged(&daemon, "body_bytes_in_flight");
    wait_metric(&daemon, gauge, 262_140.0).await;

    // Four small bodies fit in what is left, and fill the connections:
    // every one of the eight is busy with a request.
    for _ in 0..4 {
        let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
        let head = post_head(&daemon, Some(100), "sha256=00");
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[b' '; 10]).await.unwrap();
        holders.push(stream);
    }
    wait_metric(&daemon, gauge, 262_180.0).await;
    // A ninth connection is closed at once, not queued.
    let mut ninth = TcpStream::connect(daemon.addr).await.unwrap();
    let answer = until_closed(&mut ninth, Duration::from_secs(3))
        .await
        .expect("closed long before the body timeout");
    assert_eq!(answer, "");
    refusal_logged(&daemon, "max_connections");

    // The stalled bodies are cut by the body timeout, and everything they
    // held is given back.
    for holder in &mut holders {
        let answer = until_closed(holder, Duration::from_secs(15))
            .await
            .expect("a stalled body is cut");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    wait_metric(&daemon, gauge, 0.0).await;
    still_answers(&daemon).await;
}

#[tokio::test]
async fn slow_clients_cannot_hold_the_metrics_listener() {
    let daemon = door_daemon("header_timeout_ms = 1000");
    let url = metrics_url(&daemon);
    let addr = url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    // More half-sent heads than the listener keeps connections: each is
    // cut by the header timeout, or closed to make room.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A scrape answers while they are held.
    let response = client().get(&url).send().await.expect("a scrape answered");
    assert_eq!(response.status(), 200);
    for stream in &mut slow {
        until_closed(stream, Duration::from_secs(5))
            .await
            .expect("a half-sent head to /metrics was still open after 5 s");
    }
    still_answers(&daemon).await;
}
