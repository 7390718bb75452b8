//! Queue routes: nothing acknowledged is lost, failures retry and end as
//! dead letters, duplicates are dropped, a full queue pushes back.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::exposition::{metrics_url, scrape};
use crate::gate::Gate;
use crate::harness::{Daemon, DaemonBuilder, Route, eventually};

const TOKEN: &str = "queue-token";

/// The queue route to the probe, which the tests' requests go to.
pub(crate) fn queue() -> Route {
    Route::hook("queue", "goflow")
        .secret("env:TEST_QUEUE_TOKEN")
        .plugins(&["probe"])
        .queue()
}

fn daemon(queue: Route, delivery: &str) -> Daemon {
    site(queue, delivery).start()
}

/// [`daemon`], to be started once the caller has added to it. No test
/// here races the plugin deadline: a busy machine may take its time.
pub(crate) fn site(queue: Route, delivery: &str) -> DaemonBuilder {
    DaemonBuilder::new(&format!("[delivery]\n{delivery}\n"))
        .route(queue)
        // The probe records deliveries through its log: no rate limit here.
        .plugins_settings(
            "timeout_ms = 60000\nfetch_timeout_ms = 60000\nlog_lines_per_sec = 1000000\n",
        )
        .plugin("probe")
        .env("TEST_QUEUE_TOKEN", TOKEN)
}

/// A flow call whose input text is the probe's command; `n` makes the
/// body (and so its delivery id) unique.
pub(crate) fn body(command: &str, n: usize) -> Value {
    json!({"input": {"text": command}, "run": {"uuid": format!("run-{n}")}})
}

async fn send(
    client: &reqwest::Client,
    daemon: &Daemon,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(daemon.url("/hooks/queue"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(body)
        .send()
        .await
}

/// Delivery ids the probe has logged as seen (`record` command).
pub(crate) fn seen(lines: &[Value]) -> HashSet<String> {
    lines
        .iter()
        .filter(|l| l["plugin"] == "probe")
        .filter_map(|l| l["message"].as_str()?.strip_prefix("seen "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Sends `count` recorded events from `concurrency` tasks in the
/// background; yields the delivery ids that got a 2xx. Requests that fail
/// because the daemon died are not acknowledged, so not counted.
pub(crate) fn blast(
    daemon: &Daemon,
    count: usize,
    concurrency: usize,
    offset: usize,
) -> tokio::task::JoinHandle<Vec<String>> {
    let client = crate::harness::client();
    let url = daemon.url("/hooks/queue");
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (client, next, url) = (client.clone(), next.clone(), url.clone());
            tasks.spawn(async move {
                let mut acked = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return acked;
                    }
                    let sent = client
                        .post(&url)
                        .header("Authorization", format!("Token {TOKEN}"))
                        .json(&body("record", offset + n))
                        .send()
                        .await;
                    let Ok(response) = sent else { continue };
                    if !response.status().is_success() {
                        continue;
                    }
                    let Ok(reply) = response.json::<Value>().await else {
                        continue;
                    };
                    for id in reply["accepted"].as_array().unwrap() {
                        acked.push(id.as_str().unwrap().to_owned());
                    }
                }
            });
        }
        let mut acked = Vec::new();
        while let Some(done) = tasks.join_next().await {
            acked.extend(done.unwrap());
        }
        acked
    })
}

fn accepted_requests(lines: &[Value]) -> usize {
    lines.iter().filter(|l| l["message"] == "accepted").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event() {
    let mut daemon = daemon(queue(), "");
    let (total, connections) = (3000, 32);
    let sending = blast(&daemon, total, connections, 0);
    tokio::task::block_in_place(|| {
        daemon.wait_until(|lines| accepted_requests(lines) >= total / 3);
        daemon.kill9();
    });
    let acked = sending.await.unwrap();
    // `accepted` is logged as the response leaves: the kill may still
    // catch one response per connection on its way.
    assert!(
        acked.len() >= total / 3 - connections,
        "only {} acknowledged",
        acked.len()
    );
    assert!(acked.len() < total, "the kill came after every request");
    tokio::task::block_in_place(|| {
        daemon.spawn();
        daemon.wait_until(|lines| {
            let seen = seen(lines);
            acked.iter().all(|id| seen.contains(id))
        });
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_cleanly_and_keeps_every_event() {
    let mut daemon = daemon(queue(), "");
    let total = 1000;
    let sending = blast(&daemon, total, 16, 0);
    let exit = tokio::task::block_in_place(|| {
        daemon.wait_until(|lines| accepted_requests(lines) >= total / 4);
        daemon.terminate()
    });
    assert!(exit.success(), "exit status {exit:?}");
    let acked = sending.await.unwrap();
    tokio::task::block_in_place(|| {
        daemon.spawn();
        daemon.wait_until(|lines| {
            let seen = seen(lines);
            acked.iter().all(|id| seen.contains(id))
        });
    });
    // Every handled event had been acknowledged: nothing was made up.
    let seen = seen(&daemon.log_lines(|_| true));
    let acked: HashSet<String> = acked.into_iter().collect();
    assert!(
        seen.is_subset(&acked),
        "handled events that were never acknowledged"
    );
}

#[tokio::test]
async fn failures_retry_then_succeed_or_end_as_dead_letters() {
    let daemon = daemon(
        queue()
            .value("max_attempts", "3")
            .value("backoff_ms", "10")
            .value("backoff_max_ms", "50"),
        "",
    );
    let client = crate::harness::client();
    // Fails attempts 1 and 2, succeeds on the third.
    let flaky = send(&client, &daemon, &body("fail-twice", 1))
        .await
        .unwrap();
    assert_eq!(flaky.status(), 202);
    let flaky_id = flaky.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.wait_for_log(|l| l["message"] == format!("seen {flaky_id} attempt 3"));
    assert_eq!(
        daemon
            .log_lines(|l| l["message"] == "plugin failed event" && l["delivery_id"] == flaky_id)
            .len(),
        2
    );

    // Always fails: a dead letter after three attempts, with the reason.
    let doomed = send(&client, &daemon, &body("retry", 2)).await.unwrap();
    let doomed_id = doomed.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.wait_for_log(|l| l["message"] == "dead letter" && l["delivery_id"] == doomed_id);
    let dead = daemon.cli_json(&["dead-letters", "list", "--json"]);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["delivery_id"], doomed_id);
    assert_eq!(dead[0]["attempts"], 3);
    assert!(
        dead[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("probe asked to retry")
    );

    // Replayed, it is handed over again (and fails again: three more tries).
    let id = dead[0]["id"].to_string();
    let replayed = daemon.cli(&["dead-letters", "replay", &id]);
    assert!(replayed.status.success(), "{replayed:?}");
    daemon.wait_for_nth(4, |l| {
        l["message"] == "plugin failed event" && l["delivery_id"] == doomed_id
    });
    daemon.wait_for_nth(2, |l| {
        l["message"] == "dead letter" && l["delivery_id"] == doomed_id
    });

    // A plugin's `drop` is a dead letter at once, without retries.
    let dropped = send(&client, &daemon, &body("drop", 3)).await.unwrap();
    let dropped: Value = dropped.json().await.unwrap();
    let dropped_id = dropped["accepted"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{dropped}"))
        .to_owned();
    let line =
        daemon.wait_for_log(|l| l["message"] == "dead letter" && l["delivery_id"] == dropped_id);
    assert_eq!(line["attempt"], 1);
}

#[tokio::test]
async fn a_delivery_sent_twice_reaches_the_plugin_once() {
    let daemon = daemon(queue(), "workers = 1");
    let client = crate::harness::client();
    let first = send(&client, &daemon, &body("record", 7)).await.unwrap();
    assert_eq!(first.status(), 202);
    let id = first.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let second = send(&client, &daemon, &body("record", 7)).await.unwrap();
    assert_eq!(second.status(), 202);
    assert_eq!(
        second.json::<Value>().await.unwrap(),
        json!({"accepted": [], "duplicates": [id]})
    );
    // A later, different event is delivered; by then the duplicate would
    // have been too (one worker, oldest first).
    let later = send(&client, &daemon, &body("record", 8)).await.unwrap();
    let later_id = later.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    daemon.wait_for_log(|l| l["message"] == format!("seen {later_id} attempt 1"));
    let seen_first = daemon.log_lines(|l| l["message"] == format!("seen {id} attempt 1"));
    assert_eq!(seen_first.len(), 1);
}

#[tokio::test]
async fn a_delivery_sent_again_after_a_crash_is_still_a_duplicate() {
    let mut daemon = daemon(queue(), "");
    let client = crate::harness::client();
    let first = send(&client, &daemon, &body("record", 7)).await.unwrap();
    let id = first.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    // The window is rebuilt from the store, however the daemon ended.
    daemon.kill9();
    daemon.spawn();
    let again = send(&client, &daemon, &body("record", 7)).await.unwrap();
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"accepted": [], "duplicates": [id]})
    );
}

#[tokio::test]
async fn a_second_daemon_on_the_same_store_is_refused() {
    let daemon = daemon(queue(), "");
    let second = crate::harness::output(
        crate::harness::wirehook()
            .args(["run", "--config"])
            .arg(&daemon.config)
            .env("RUST_LOG", "error")
            .env("TEST_QUEUE_TOKEN", TOKEN),
        crate::harness::WAIT,
    );
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another wirehook daemon is running on"),
        "{stderr}"
    );
    // The first one goes on.
    let client = crate::harness::client();
    let answer = send(&client, &daemon, &body("record", 1)).await.unwrap();
    assert_eq!(answer.status(), 202);
}

// Multi-threaded: the gate's server must answer while the test blocks
// on the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_until_it_drains() {
    // One worker held at the gate, room for two.
    let gate = Gate::serve().await;
    let daemon = site(
        queue().value("max_attempts", "1"),
        "workers = 1\nmax_queue_depth = 2",
    )
    .plugins_settings(&format!(
        "timeout_ms = 60000\nfetch_timeout_ms = 60000\n\n[plugin.probe]\nallow_http = [\"{}\"]",
        gate.origin()
    ))
    .server_settings("metrics_listen = \"127.0.0.1:0\"")
    .start();
    let metrics = metrics_url(&daemon);
    let client = crate::harness::client();
    for n in 0..2 {
        let response = send(&client, &daemon, &body(&gate.command(), n))
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    gate.arrival("the first queued event").await;
    let full = send(&client, &daemon, &body("record", 10)).await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "5");
    tokio::task::block_in_place(|| {
        daemon.wait_for_log(|l| {
            l["message"] == "queue full: asking the provider to retry later" && l["depth"] == 2
        })
    });
    // Both are delivered once released: room again.
    gate.release(1);
    gate.arrival("the second queued event").await;
    gate.release(1);
    eventually("the queue to drain", || async {
        (scrape(&client, &metrics).await["wirehook_queue_depth"] == 0.0).then_some(())
    })
    .await;
    let room = send(&client, &daemon, &body("record", 10)).await.unwrap();
    assert_eq!(room.status(), 202);
}

/// Housekeeping runs in the daemon every `housekeeping_secs`: finished
/// events past `retention_hours` are deleted, and the queue depth is
/// counted again from the store, which events re-queued by another
/// process changed behind the daemon's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_prunes_finished_events_and_recounts_the_queue() {
    let daemon = site(
        queue().value("max_attempts", "1"),
        "retention_hours = 0\nhousekeeping_secs = 1",
    )
    .server_settings("metrics_listen = \"127.0.0.1:0\"")
    .start();
    let metrics = metrics_url(&daemon);
    let client = crate::harness::client();
    let accepted = |reply: Value| reply["accepted"][0].as_str().unwrap().to_owned();
    let delivered = accepted(
        send(&client, &daemon, &body("record", 1))
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let doomed = accepted(
        send(&client, &daemon, &body("retry", 2))
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let dead_letter = |n| {
        tokio::task::block_in_place(|| {
            daemon.wait_for_nth(n, |l| {
                l["message"] == "dead letter" && l["delivery_id"] == doomed
            })
        })
    };
    dead_letter(1);
    // Replayed by the CLI, another process: the daemon's count never
    // saw it queued, so its second end takes the count below zero.
    let dead = daemon.cli_json(&["dead-letters", "list", "--json"]);
    let replayed = daemon.cli(&["dead-letters", "replay", &dead[0]["id"].to_string()]);
    assert!(replayed.status.success(), "{replayed:?}");
    dead_letter(2);
    // The second pass from here began after the count went below zero.
    let pass = |l: &Value| l["message"] == "housekeeping done";
    let passes = daemon.log_lines(pass).len();
    tokio::task::block_in_place(|| daemon.wait_for_nth(passes + 2, pass));
    assert_eq!(
        scrape(&client, &metrics).await["wirehook_queue_depth"],
        0.0,
        "the queue depth was not counted again"
    );
    tokio::task::block_in_place(|| {
        daemon.wait_for_log(|l| l["message"] == "pruned finished events" && l["events"] == 1)
    });
    let stored = |id: &str| {
        let events = daemon.cli_json(&["events", "--json"]);
        events.iter().any(|e| e["delivery_id"] == id)
    };
    assert!(
        !stored(&delivered),
        "a delivered event outlived its retention"
    );
    assert!(stored(&doomed), "a dead letter was pruned");
}
