//! Routes with several plugins: they run in the configured order, the
//! first failure stops the rest, the last reply any of them gave is the
//! answer, and a queue retry runs the whole chain again.
//!
//! Every plugin here is a copy of the probe that does what its settings
//! say (`configured`), logging `ran NAME` first.

use serde_json::{Value, json};

use crate::harness::{Daemon, DaemonBuilder, Route};

/// `(name, command)` of each probe copy.
const COPIES: &[(&str, &str)] = &[
    ("first", r#"reply 201 {"from":"first"}"#),
    ("second", r#"reply 202 {"from":"second"}"#),
    ("silent", "none"),
    ("failing", "retry"),
    ("flaky", "fail-twice"),
];

fn daemon() -> Daemon {
    let route = |name: &str, plugins: &[&str]| {
        Route::hook(name, "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(plugins)
    };
    let mut config = String::new();
    for (name, command) in COPIES {
        config.push_str(&format!(
            "\n[plugin.{name}]\nsettings = {{ name = '{name}', command = '{command}' }}\n"
        ));
    }
    let mut builder = DaemonBuilder::new(&config)
        .route(route("chain", &["first", "second", "silent"]).respond())
        .route(route("broken", &["first", "failing", "second"]).respond())
        .route(
            route("queued", &["first", "flaky", "second"])
                .queue()
                .value("backoff_ms", "10")
                .value("backoff_max_ms", "50"),
        )
        .plugins_settings("timeout_ms = 60000")
        .env("TEST_TOKEN", "t");
    let probe = crate::harness::plugin_wasm("probe");
    for (name, _) in COPIES {
        builder = builder.plugin_file(name, &probe);
    }
    builder.start()
}

async fn call(daemon: &Daemon, route: &str, run: &str) -> (u16, Value) {
    let response = crate::harness::client()
        .post(daemon.url(&format!("/hooks/{route}")))
        .header("Authorization", "Token t")
        .json(&json!({"input": {"text": "configured"}, "run": {"uuid": run}}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What happened to `delivery_id`, in log order: `ran NAME` when a plugin
/// started, `NAME ok` / `NAME failed` when its call ended.
fn steps(daemon: &Daemon, delivery_id: &str) -> Vec<String> {
    daemon
        .log_lines(|l| l["delivery_id"] == delivery_id)
        .iter()
        .filter_map(|l| {
            let message = l["message"].as_str()?;
            let plugin = l["plugin"].as_str().unwrap_or("?");
            match message {
                "plugin handled event" => Some(format!("{plugin} ok")),
                "plugin failed event" => Some(format!("{plugin} failed")),
                m if m.starts_with("ran ") => Some(m.to_owned()),
                _ => None,
            }
        })
        .collect()
}

/// The delivery id of the only event a route logged a plugin call for.
fn delivery_of(daemon: &Daemon, route: &str) -> String {
    let line = daemon.wait_for_log(|l| {
        l["route"] == route && l["message"].as_str().is_some_and(|m| m.starts_with("ran "))
    });
    line["delivery_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn plugins_run_in_order_and_the_last_reply_is_the_answer() {
    let daemon = daemon();
    let (status, reply) = call(&daemon, "chain", "r1").await;
    // `silent` ran last and gave no reply: `second`'s stands.
    assert_eq!((status, reply), (202, json!({"from": "second"})));
    let id = delivery_of(&daemon, "chain");
    daemon.wait_plugin_calls("chain", 3);
    assert_eq!(
        steps(&daemon, &id),
        [
            "ran first",
            "first ok",
            "ran second",
            "second ok",
            "ran silent",
            "silent ok"
        ]
    );
}

#[tokio::test]
async fn the_first_failure_stops_the_rest() {
    let daemon = daemon();
    let (status, reply) = call(&daemon, "broken", "r2").await;
    assert_eq!(status, 502, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("asked to retry")),
        "{reply}"
    );
    let id = delivery_of(&daemon, "broken");
    // Logged before the answer was sent.
    daemon.wait_plugin_calls("broken", 2);
    assert_eq!(
        steps(&daemon, &id),
        ["ran first", "first ok", "ran failing", "failing failed"]
    );
}

#[tokio::test]
async fn a_queue_retry_runs_the_whole_chain_again() {
    let daemon = daemon();
    let (status, reply) = call(&daemon, "queued", "r4").await;
    assert_eq!(status, 202, "{reply}");
    let id = reply["accepted"][0].as_str().unwrap().to_owned();
    // `flaky` fails attempts 1 and 2; the third goes through to the end.
    daemon.wait_for_log(|l| l["message"] == format!("seen {id} attempt 3"));
    daemon.wait_plugin_calls("queued", 2 + 2 + 3);
    let attempt = ["ran first", "first ok", "ran flaky", "flaky failed"];
    let last = [
        "ran first",
        "first ok",
        "ran flaky",
        "flaky ok",
        "ran second",
        "second ok",
    ];
    let expected: Vec<&str> = attempt
        .iter()
        .chain(&attempt)
        .chain(&last)
        .copied()
        .collect();
    assert_eq!(steps(&daemon, &id), expected);
}
