//! A misbehaving plugin fails its own event and nothing else.

use serde_json::{Value, json};

use crate::harness::{Daemon, DaemonBuilder, Route};

fn daemon(isolation: &str) -> Daemon {
    DaemonBuilder::new(&format!(
        r#"
[plugin.probe]
isolation = "{isolation}"
"#
    ))
    .route(
        Route::hook("probe", "goflow")
            .secret("env:TEST_PROBE_TOKEN")
            .plugins(&["probe"])
            .respond(),
    )
    .plugins_settings("memory_mb = 32\ntimeout_ms = 300\n")
    .plugin("probe")
    .env("TEST_PROBE_TOKEN", "t")
    .start()
}

/// Sends `command` as the flow's input text; the probe acts on it.
async fn send(daemon: &Daemon, command: &str) -> (u16, Value) {
    let response = crate::harness::client()
        .post(daemon.url("/hooks/probe"))
        .header("Authorization", "Token t")
        .json(&json!({"input": {"text": command}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn assert_still_serving(daemon: &Daemon) {
    let (status, echo) = send(daemon, "hello").await;
    assert_eq!(status, 200);
    assert_eq!(echo["payload"]["type"], "flow-call");
    assert_eq!(echo["payload"]["variables"]["input"], "hello");
}

#[tokio::test]
async fn endless_loop_fails_at_the_deadline() {
    for isolation in ["pooled", "event"] {
        let daemon = daemon(isolation);
        assert_still_serving(&daemon).await;
        let (status, error) = send(&daemon, "loop").await;
        assert_eq!(status, 502);
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("deadline of 300 ms"),
            "{error}"
        );
        assert_still_serving(&daemon).await;
    }
}

#[tokio::test]
async fn growing_past_the_memory_cap_traps() {
    let daemon = daemon("pooled");
    let (status, error) = send(&daemon, "grow").await;
    assert_eq!(status, 502);
    assert_eq!(error["error"], "plugin trapped");
    // Why is the operator's to read, in the log.
    let line = daemon.wait_for_log(|l| l["message"] == "plugin failed event");
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("memory cap of 32 MiB"),
        "{line}"
    );
    assert_still_serving(&daemon).await;
}

#[tokio::test]
async fn panic_is_a_502_and_the_daemon_serves_on() {
    let daemon = daemon("pooled");
    assert_still_serving(&daemon).await;
    let (status, error) = send(&daemon, "panic").await;
    assert_eq!(status, 502);
    assert!(
        error["error"].as_str().unwrap().contains("trapped"),
        "{error}"
    );
    // The guest's panic message reaches the log.
    daemon.wait_for_log(|l| {
        l["stderr"]
            .as_str()
            .is_some_and(|s| s.contains("probe asked to panic"))
    });
    assert_still_serving(&daemon).await;
}

#[tokio::test]
async fn failures_from_the_plugin_are_502_with_the_reason() {
    let daemon = daemon("pooled");
    for (command, reason) in [
        ("retry", "probe asked to retry"),
        ("drop", "probe asked to drop"),
    ] {
        let (status, error) = send(&daemon, command).await;
        assert_eq!(status, 502);
        assert!(error["error"].as_str().unwrap().contains(reason), "{error}");
    }
    let (status, _) = send(&daemon, "none").await;
    assert_eq!(status, 204);
    assert_still_serving(&daemon).await;
}

#[tokio::test]
async fn the_guest_sees_no_environment_and_no_filesystem() {
    let daemon = daemon("pooled");
    let (status, seen) = send(&daemon, "env").await;
    assert_eq!(status, 200);
    assert_eq!(seen, json!({"env": 0, "fs": false}));
}

#[tokio::test]
async fn a_reply_with_an_invalid_status_or_json_is_a_502() {
    let daemon = daemon("pooled");
    for (command, why) in [
        ("reply 99 {}", "invalid status"),
        ("reply 600 {}", "invalid status"),
        ("reply 200 {\"unclosed\": ", "invalid JSON"),
        ("reply 200", "invalid JSON"),
    ] {
        let (status, error) = send(&daemon, command).await;
        assert_eq!(status, 502, "{command}: {error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(why)),
            "{command}: {error}"
        );
    }
    daemon.wait_for_nth(2, |l| {
        l["message"] == "plugin replied with an invalid status" && l["route"] == "probe"
    });
    daemon.wait_for_nth(2, |l| {
        l["message"] == "plugin replied with invalid JSON" && l["route"] == "probe"
    });
    // The edges of the valid range pass through as they are.
    for code in [200, 599] {
        let (status, reply) = send(&daemon, &format!("reply {code} [1]")).await;
        assert_eq!((status, reply), (code, json!([1])));
    }
    assert_still_serving(&daemon).await;
}

#[tokio::test]
async fn the_guest_opens_no_sockets() {
    // A TCP and a UDP socket on the same loopback port for the guest to try.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind(addr).unwrap();
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    let daemon = daemon("pooled");
    let (status, tried) = send(&daemon, &format!("sockets {addr}")).await;
    assert_eq!(status, 200, "{tried}");
    assert_eq!(tried, json!({"tcp": false, "udp": false, "dns": false}));
    // The attempts ended before the reply: whatever got through would be
    // waiting here already.
    let accepted = tcp.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "{accepted:?}"
    );
    let received = udp.recv(&mut [0u8; 64]);
    assert!(
        received
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "{received:?}"
    );
}

/// A warm instance keeps its memory between events: it is replaced after
/// `max_events_per_instance` events, or once it grew past three quarters
/// of the memory cap. The probe's `count` says how many events the
/// instance answering has seen.
#[tokio::test]
async fn warm_instances_are_replaced_when_worn_out_or_grown() {
    let daemon = DaemonBuilder::new("")
        .route(
            Route::hook("probe", "goflow")
                .secret("env:TEST_PROBE_TOKEN")
                .plugins(&["probe"])
                .respond(),
        )
        .plugins_settings(
            "memory_mb = 32\npool_size = 1\nmax_events_per_instance = 3\ntimeout_ms = 60000",
        )
        .plugin("probe")
        .env("TEST_PROBE_TOKEN", "t")
        .start();
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(send(&daemon, "count").await.1["count"].clone());
    }
    assert_eq!(counts, [1, 2, 3, 1], "after three events, a fresh instance");
    // 24 MiB on top of what the instance had: past 24 of 32 MiB.
    assert_eq!(send(&daemon, "keep 24").await.1["count"], 2);
    assert_eq!(
        send(&daemon, "count").await.1["count"],
        1,
        "the grown instance was kept"
    );
    assert_eq!(send(&daemon, "count").await.1["count"], 2);
}
