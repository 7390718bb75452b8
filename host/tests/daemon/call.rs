//! `wirehook call`: one event through one real plugin from the command
//! line, in each input form, ending in each exit code, with its host
//! calls reported and its effects made or held back.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::capabilities::{ask, command, probe_site, serve};
use crate::harness::{Daemon, Route, eventually};

/// A probe on a respond route and a queue route, granted KV and fetch
/// to `origin`.
pub fn probe_daemon(origin: &str) -> Daemon {
    probe_site(
        &format!("[plugin.probe]\nkv = true\nallow_http = [\"{origin}\"]\n"),
        "timeout_ms = 1000",
    )
    .route(
        Route::hook("later", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["probe"])
            .value("max_attempts", "1"),
    )
    .start()
}

/// A fake CRM on loopback that counts the requests it gets.
pub async fn crm() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/crm",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "crm says hi" }
        }),
    );
    (format!("http://{}", serve(router).await), hits)
}

/// A goflow payload whose input the probe runs as a command.
pub fn payload(text: &str) -> String {
    command(text).to_string()
}

/// The delivery log, once it holds `n` finished events: respond rows are
/// written lazily, queued events once their attempt is recorded.
pub async fn finished(daemon: &Daemon, n: usize) -> Vec<Value> {
    eventually(format!("{n} finished events in the store"), || async {
        let events = tokio::task::block_in_place(|| daemon.cli_json(&["events", "--json"]));
        let done = events
            .iter()
            .filter(|e| !["queued", "running"].contains(&e["status"].as_str().unwrap()))
            .count();
        (done == n).then_some(events)
    })
    .await
}

/// What `wirehook call` printed and how it exited.
pub struct Called {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Called {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON reply ({e}): {}", self.stdout))
    }
}

pub fn call(daemon: &Daemon, args: &[&str]) -> Called {
    let mut all = vec!["call", "probe"];
    all.extend_from_slice(args);
    let output = tokio::task::block_in_place(|| daemon.cli(&all));
    Called {
        code: output.status.code().expect("exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `call` with `text` as a goflow payload written to a file in `dir`.
fn call_payload(daemon: &Daemon, dir: &Path, text: &str, extra: &[&str]) -> Called {
    let file = dir.join("payload.json");
    std::fs::write(&file, payload(text)).unwrap();
    let mut args = vec!["--provider", "goflow", "--payload", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    call(daemon, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn call_exits_by_how_the_plugin_ended() {
    let daemon = probe_daemon("http://127.0.0.1:9");
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| call_payload(&daemon, dir.path(), text, &[]);

    let echoed = run("hello");
    assert_eq!(echoed.code, 0, "{}", echoed.stderr);
    let reply = echoed.json();
    assert_eq!(reply["kind"], "call_webhook");
    assert_eq!(reply["source"]["route"], "probe", "the route that runs it");
    assert_eq!(reply["payload"]["variables"]["input"], "hello");
    assert!(echoed.stderr.contains("reply 200"), "{}", echoed.stderr);

    let logged = run("chatter 2");
    assert_eq!(logged.code, 0);
    assert!(
        logged.stderr.contains("log info: chatter 1"),
        "{}",
        logged.stderr
    );

    let none = run("none");
    assert_eq!((none.code, none.stdout.as_str()), (0, ""));
    assert!(none.stderr.contains("no reply"), "{}", none.stderr);

    for (text, code, said) in [
        ("retry", 1, "probe asked to retry"),
        ("drop", 2, "probe asked to drop"),
        ("panic", 3, "plugin trapped"),
        ("loop", 3, "exceeded its deadline"),
    ] {
        let failed = run(text);
        assert_eq!(failed.code, code, "{text}: {}", failed.stderr);
        assert_eq!(failed.stdout, "", "{text}");
        assert!(failed.stderr.contains(said), "{text}: {}", failed.stderr);
    }

    let file = dir.path().join("broken.json");
    std::fs::write(&file, "{not json").unwrap();
    let refused = call(
        &daemon,
        &["--provider", "goflow", "--payload", file.to_str().unwrap()],
    );
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("--payload"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn call_takes_an_event_from_the_store_or_a_file() {
    let daemon = probe_daemon("http://127.0.0.1:9");
    let (status, live) = ask(&daemon, "/hooks/probe", "hello").await;
    assert_eq!(status, 200);
    let events = finished(&daemon, 1).await;
    let id = events[0]["id"].to_string();

    let stored = call(&daemon, &["--stored", &id]);
    assert_eq!(stored.code, 0, "{}", stored.stderr);
    assert_eq!(
        stored.json(),
        live,
        "the stored event answers as it did live"
    );

    // A dead letter, shown as the CLI shows it, then called as a file.
    let response = crate::harness::client()
        .post(daemon.url("/hooks/later"))
        .header("Authorization", "Token t")
        .header("Content-Type", "application/json")
        .body(payload("drop"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    tokio::task::block_in_place(|| daemon.wait_for_log(|l| l["message"] == "dead letter"));
    let dead = tokio::task::block_in_place(|| daemon.cli_json(&["dead-letters", "list", "--json"]));
    let shown = tokio::task::block_in_place(|| {
        daemon.cli(&["dead-letters", "show", &dead[0]["id"].to_string()])
    });
    assert!(shown.status.success(), "{shown:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dead.json");
    std::fs::write(&file, &shown.stdout).unwrap();
    let dropped = call(&daemon, &["--event", file.to_str().unwrap()]);
    assert_eq!(dropped.code, 2, "{}", dropped.stderr);
    assert!(
        dropped.stderr.contains("probe asked to drop"),
        "{}",
        dropped.stderr
    );

    // The event alone, edited: the probe now echoes it.
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let mut event = shown["event"].clone();
    event["payload"]["FlowCall"]["variables"][0][1] = json!("edited");
    std::fs::write(&file, event.to_string()).unwrap();
    let edited = call(&daemon, &["--event", file.to_str().unwrap()]);
    assert_eq!(edited.code, 0, "{}", edited.stderr);
    assert_eq!(edited.json()["payload"]["variables"]["input"], "edited");
    assert_eq!(edited.json()["source"]["route"], "later");
}

#[tokio::test(flavor = "multi_thread")]
async fn call_makes_effects_unless_told_not_to() {
    let (origin, hits) = crm().await;
    let daemon = probe_daemon(&origin);
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str, extra: &[&str]| call_payload(&daemon, dir.path(), text, extra);
    let fetch = format!("fetch {origin}/crm");

    let held = run(&fetch, &["--no-effects"]);
    assert_eq!(held.code, 0, "{}", held.stderr);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the CRM was called");
    assert!(
        held.json()["error"]
            .as_str()
            .unwrap()
            .contains("no effects")
    );
    assert!(
        held.stderr
            .contains(&format!("fetch GET {origin}/crm -> not made")),
        "{}",
        held.stderr
    );

    let made = run(&fetch, &[]);
    assert_eq!(made.json(), json!({"status": 200, "body": "crm says hi"}));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(
        made.stderr
            .contains(&format!("fetch GET {origin}/crm -> 200 (")),
        "{}",
        made.stderr
    );

    let kept = run("kv-set k 4", &["--no-effects"]);
    assert_eq!(kept.json(), json!({"ok": true}));
    assert!(
        kept.stderr.contains("kv set k (4 bytes)"),
        "{}",
        kept.stderr
    );
    assert_eq!(run("kv-get k", &[]).json(), json!({"value": null}));

    assert_eq!(run("kv-set k 4", &[]).json(), json!({"ok": true}));
    let read = run("kv-get k", &["--no-effects"]);
    assert_eq!(
        read.json(),
        json!({"value": "xxxx"}),
        "read from the snapshot"
    );
    assert!(read.stderr.contains("kv get k (found)"), "{}", read.stderr);
    let (_, live) = ask(&daemon, "/hooks/probe", "kv-get k").await;
    assert_eq!(live, json!({"value": "xxxx"}), "the daemon sees the write");
}
