//! A misbehaving plugin fails its own event and nothing else.

use serde_json::{Value, json};

use crate::harness::{Daemon, DaemonBuilder};

fn daemon(isolation: &str) -> Daemon {
    DaemonBuilder::new(&format!(
        r#"
[[route]]
name = "probe"
path = "/hooks/probe"
provider = "goflow"
secret = "env:TEST_PROBE_TOKEN"
plugins = ["probe"]
mode = "respond"

[plugin.probe]
isolation = "{isolation}"
"#
    ))
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
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("memory cap of 32 MiB"),
        "{error}"
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
