//! Plugin calls in flight when the daemon is told to stop or to reload:
//! they finish within `delivery.shutdown_grace_secs`, are cut at its end
//! and stay queued, and a reload leaves them on the table they started
//! with. Each call is held at a [`Gate`] for exactly as long as the test
//! wants.

use serde_json::{Value, json};

use crate::capabilities::{ask_at, probe_site};
use crate::gate::Gate;
use crate::harness::{Daemon, DaemonBuilder, plugin_wasm, within};

const TOKEN: &str = "inflight-token";

/// A queue route to the probe, which may fetch the gate.
fn queue_daemon(gate: &Gate, grace_secs: u64) -> Daemon {
    DaemonBuilder::new(&format!(
        r#"
[delivery]
shutdown_grace_secs = {grace_secs}

[plugin.probe]
allow_http = ["{}"]
"#,
        gate.origin()
    ))
    .route(crate::delivery::queue())
    .plugins_settings("timeout_ms = 600000\nfetch_timeout_ms = 600000")
    .plugin("probe")
    .env("TEST_QUEUE_TOKEN", TOKEN)
    .start()
}

/// Queues one event that fetches the gate; returns its delivery id.
async fn queue_held(daemon: &Daemon, gate: &Gate) -> String {
    let response = crate::harness::client()
        .post(daemon.url("/hooks/queue"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&json!({"input": {"text": gate.command()}, "run": {"uuid": "held"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let reply: Value = response.json().await.unwrap();
    reply["accepted"][0].as_str().unwrap().to_owned()
}

/// The stored status of the event `id` (the CLI reads the store).
fn status_of(daemon: &Daemon, id: &str) -> String {
    let events = daemon.cli_json(&["events", "--json"]);
    let event = events
        .iter()
        .find(|e| e["delivery_id"] == id)
        .unwrap_or_else(|| panic!("{id} not stored: {events:?}"));
    event["status"].as_str().unwrap().to_owned()
}

fn is_shutting_down(line: &Value) -> bool {
    line["message"] == "shutting down: finishing requests in flight"
}

fn is_cut(line: &Value) -> bool {
    line["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("plugin calls still running at the end of the grace"))
}

// Multi-threaded: the gate's server answers while the test blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_in_flight_at_sigterm_finishes_within_the_grace() {
    let gate = Gate::serve().await;
    let mut daemon = queue_daemon(&gate, 600);
    let id = queue_held(&daemon, &gate).await;
    gate.arrival("the queued call").await;
    daemon.signal("TERM");
    tokio::task::block_in_place(|| daemon.wait_for_log(is_shutting_down));
    gate.release(1);
    let exit = tokio::task::block_in_place(|| daemon.wait_exit());
    assert!(exit.success(), "{exit:?}");
    assert!(daemon.log_lines(is_cut).is_empty());
    assert_eq!(
        daemon
            .log_lines(|l| l["message"] == "plugin handled event" && l["delivery_id"] == id)
            .len(),
        1
    );
    assert_eq!(status_of(&daemon, &id), "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_running_at_the_end_of_the_grace_is_cut_and_stays_queued() {
    let gate = Gate::serve().await;
    let mut daemon = queue_daemon(&gate, 1);
    let id = queue_held(&daemon, &gate).await;
    gate.arrival("the queued call").await;
    // Never released: the grace (1 s, the daemon's own timer) runs out.
    daemon.signal("TERM");
    let exit = tokio::task::block_in_place(|| daemon.wait_exit());
    assert!(exit.success(), "{exit:?}");
    assert_eq!(daemon.log_lines(is_cut).len(), 1);
    assert!(
        daemon
            .log_lines(|l| l["message"] == "plugin handled event")
            .is_empty()
    );
    assert_ne!(status_of(&daemon, &id), "delivered");
    // The next start hands it over again. The first, cut call's request
    // may still hold a permit's place at the gate: release both.
    tokio::task::block_in_place(|| daemon.spawn());
    assert_eq!(gate.arrival("the call after the restart").await, 0);
    gate.release(2);
    tokio::task::block_in_place(|| {
        daemon.wait_for_log(|l| l["message"] == "plugin handled event" && l["delivery_id"] == id)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_respond_call_in_flight_at_sigterm_gets_its_answer() {
    let gate = Gate::serve().await;
    let mut daemon = probe_site(
        &format!("[plugin.probe]\nallow_http = [\"{}\"]", gate.origin()),
        "timeout_ms = 600000\nfetch_timeout_ms = 600000",
    )
    .start();
    let (url, command) = (daemon.url("/hooks/probe"), gate.command());
    let call = tokio::spawn(async move { ask_at(&url, &command).await });
    gate.arrival("the respond call").await;
    daemon.signal("TERM");
    tokio::task::block_in_place(|| daemon.wait_for_log(is_shutting_down));
    gate.release(1);
    let (status, reply) = within("the held call's answer", call).await.unwrap();
    assert_eq!(
        (status, reply),
        (200, json!({"status": 200, "body": "released"}))
    );
    let exit = tokio::task::block_in_place(|| daemon.wait_exit());
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_across_a_reload_finishes_on_its_table() {
    let gate = Gate::serve().await;
    let daemon = probe_site(
        &format!(
            "[reload]\ndebounce_ms = 50\n\n[plugin.probe]\nallow_http = [\"{}\"]",
            gate.origin()
        ),
        "timeout_ms = 600000\nfetch_timeout_ms = 600000",
    )
    .start();
    let (url, command) = (daemon.url("/hooks/probe"), gate.command());
    let held = tokio::spawn({
        let url = url.clone();
        async move { ask_at(&url, &command).await }
    });
    gate.arrival("the held call").await;
    // The route's plugin becomes order-status: new requests see it...
    daemon.replace_file(
        &daemon.plugins_dir().join("probe.wasm"),
        &std::fs::read(plugin_wasm("order-status")).unwrap(),
    );
    tokio::task::block_in_place(|| daemon.wait_for_log(|l| l["message"] == "reloaded"));
    let (status, reply) = ask_at(&url, "CU001").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["number"], "CU001", "{reply}");
    // ...and the one in flight finishes on the probe it started with.
    gate.release(1);
    let (status, reply) = within("the held call's answer", held).await.unwrap();
    assert_eq!(
        (status, reply),
        (200, json!({"status": 200, "body": "released"}))
    );
}
