//! `wirehook replay --dry-run`: a store filled by real signed requests
//! through the daemon, replayed through a candidate build with no
//! effects: a build that answers the same finds no difference, one that
//! answers differently lists the events it differs on, and neither
//! reaches the fake CRM or changes the KV store.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::call::{crm, finished, payload, probe_daemon};
use crate::capabilities::ask;
use crate::harness::{Daemon, plugin_wasm};

/// Queues `text` on the probe's queue route.
async fn queue(daemon: &Daemon, text: &str) {
    let response = crate::harness::client()
        .post(daemon.url("/hooks/later"))
        .header("Authorization", "Token t")
        .header("Content-Type", "application/json")
        .body(payload(text))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Every KV entry in the daemon's store.
fn kv(daemon: &Daemon) -> Vec<(String, String, Vec<u8>)> {
    let db = daemon.config.parent().unwrap().join("data/wirehook.db");
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let mut query = conn
        .prepare("SELECT namespace, key, value FROM kv ORDER BY namespace, key")
        .unwrap();
    query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs a dry-run replay: its exit code and stdout.
fn dry_run(daemon: &Daemon, args: &[&str]) -> (i32, String) {
    let mut all = vec!["replay", "--dry-run"];
    all.extend_from_slice(args);
    let output = tokio::task::block_in_place(|| daemon.cli(&all));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().expect("exited");
    assert!(code == 0 || code == 1, "{code}: {stdout}\n{stderr}");
    (code, stdout)
}

fn dry_run_json(daemon: &Daemon, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, stdout) = dry_run(daemon, &all);
    (code, serde_json::from_str(&stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_that_answers_the_same_finds_no_difference_and_changes_nothing() {
    let (origin, hits) = crm().await;
    let daemon = probe_daemon(&origin);
    for text in [
        "hello",
        "reply 201 {\"n\":1}",
        "kv-set a 3",
        "kv-del a",
        "kv-get a",
        "none",
        "retry",
    ] {
        ask(&daemon, "/hooks/probe", text).await;
    }
    for text in ["hello", "record", "kv-set b 2"] {
        queue(&daemon, text).await;
    }
    finished(&daemon, 10).await;
    let before = kv(&daemon);
    assert_eq!(before, [("probe".into(), "b".into(), b"xx".to_vec())]);

    let probe = plugin_wasm("probe");
    let (code, out) = dry_run_json(&daemon, &["--wasm", probe.to_str().unwrap()]);
    assert_eq!(code, 0, "{out:#}");
    let summary = &out["summary"];
    assert_eq!(
        (&summary["events"], &summary["same"], &summary["different"]),
        (&json!(10), &json!(10), &json!(0)),
        "{out:#}"
    );
    assert_eq!(summary["candidate_failed"], 0);
    assert_eq!(summary["current_failed"], 0);
    // kv-set a, kv-del a, and kv-set b (the candidate's run of it).
    assert_eq!(summary["kv_writes_kept"], 3, "{out:#}");
    assert_eq!(out["differences"], json!([]));
    assert!(summary["events_per_sec"].as_f64().unwrap() > 0.0);

    assert_eq!(kv(&daemon), before, "the dry run wrote to the KV store");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let (_, read) = ask(&daemon, "/hooks/probe", "kv-get a").await;
    assert_eq!(
        read,
        json!({"value": null}),
        "the daemon sees no dry-run write"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_that_answers_differently_is_listed_event_by_event() {
    let (origin, hits) = crm().await;
    let daemon = probe_daemon(&origin);
    for text in ["hello", "kv-get a"] {
        ask(&daemon, "/hooks/probe", text).await;
    }
    let (status, fetched) = ask(&daemon, "/hooks/probe", &format!("fetch {origin}/crm")).await;
    assert_eq!(
        (status, fetched),
        (200, json!({"status": 200, "body": "crm says hi"}))
    );
    queue(&daemon, "hello").await;
    let events = finished(&daemon, 4).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let fetch_event = events
        .iter()
        .find(|e| {
            e["reply"]
                .as_str()
                .is_some_and(|r| r.contains("crm says hi"))
        })
        .unwrap();

    // The same build: only the event whose reply came from the CRM
    // differs, since the dry run does not call it.
    let probe = plugin_wasm("probe");
    let (code, out) = dry_run_json(&daemon, &["--wasm", probe.to_str().unwrap()]);
    assert_eq!(code, 1, "{out:#}");
    assert_eq!(out["summary"]["same"], 3, "{out:#}");
    assert_eq!(out["summary"]["different"], 1);
    assert_eq!(out["summary"]["fetches_not_made"], 1);
    let differences = out["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1);
    let differs = &differences[0];
    assert_eq!(differs["delivery_id"], fetch_event["delivery_id"]);
    assert_eq!(differs["against"], "recorded");
    assert_eq!(differs["calls"][0]["call"], "fetch");
    assert_eq!(differs["calls"][0]["url"], format!("{origin}/crm"));
    assert_eq!(differs["calls"][0]["status"], Value::Null);
    let paths: Vec<&str> = differs["diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/body", "/error", "/status"]);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the dry run reached the CRM"
    );

    // Another plugin in the probe's place: every event differs, the
    // queue route's against the current build run alongside.
    let router = plugin_wasm("router");
    let args = ["--wasm", router.to_str().unwrap(), "--plugin", "probe"];
    let (code, out) = dry_run_json(&daemon, &args);
    assert_eq!(code, 1);
    assert_eq!(out["summary"]["different"], 4, "{out:#}");
    let against: Vec<&str> = out["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["against"].as_str().unwrap())
        .collect();
    assert_eq!(
        against.iter().filter(|a| **a == "current").count(),
        1,
        "{against:?}"
    );

    let (_, only_queue) = dry_run_json(&daemon, &[&args[..], &["--route", "later"]].concat());
    assert_eq!(only_queue["summary"]["events"], 1);
    let (_, limited) = dry_run_json(&daemon, &[&args[..], &["--limit", "2"]].concat());
    assert_eq!(limited["summary"]["events"], 2);

    // The human summary says the same.
    let (code, text) = dry_run(&daemon, &args);
    assert_eq!(code, 1);
    assert!(
        text.contains("same 0, different 4, candidate failed 0, current failed 0"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "delivery {}",
            fetch_event["delivery_id"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains("events/s"), "{text}");
}
