//! Several daemons on one PostgreSQL database: every acknowledged event
//! reaches a plugin when one daemon is killed or the database restarts,
//! and a delivery id posted to two daemons at once is handled once.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::delivery::{blast, body, queue, seen, site};
use crate::harness::postgres::PgServer;
use crate::harness::{Daemon, Route, eventually};

const TOKEN: &str = "queue-token";

/// A daemon on `server`'s database, with a short lease so that a killed
/// daemon's events come back within the test, yet long enough that a
/// daemon starved of CPU on a busy machine still renews it in time (a
/// lapsed lease lets a second instance deliver an event again).
fn on_database(server: &PgServer) -> Daemon {
    let inline = Route::hook("inline", "goflow")
        .secret("env:TEST_QUEUE_TOKEN")
        .plugins(&["probe"])
        .respond();
    site(queue(), "lease_secs = 10")
        .route(inline)
        .storage_settings("backend = \"postgres\"\nurl = \"env:TEST_DATABASE_URL\"")
        .env("TEST_DATABASE_URL", &server.url())
        .start()
}

/// The probe's `seen` lines, by delivery id: how many times each was
/// handled, across `logs`.
fn sightings<'a>(logs: impl IntoIterator<Item = &'a [Value]>) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for lines in logs {
        for line in lines.iter().filter(|l| l["plugin"] == "probe") {
            let Some(id) = line["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("seen "))
                .and_then(|rest| rest.split(' ').next())
            else {
                continue;
            };
            *count.entry(id.to_owned()).or_default() += 1;
        }
    }
    count
}

fn all_lines(daemon: &Daemon) -> Vec<Value> {
    daemon.log_lines(|_| true)
}

/// Waits until every id in `acked` was handled by one of `daemons`.
async fn wait_all_seen(daemons: &[&Daemon], acked: &[String]) {
    eventually("every acknowledged event to reach the plugin", || async {
        let seen: HashSet<String> = daemons.iter().flat_map(|d| seen(&all_lines(d))).collect();
        acked.iter().all(|id| seen.contains(id)).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_lose_nothing_when_one_is_killed_and_restarted() {
    let Some(server) = tokio::task::block_in_place(|| {
        PgServer::start("two_daemons_lose_nothing_when_one_is_killed_and_restarted")
    }) else {
        return;
    };
    let (mut a, b) = tokio::task::block_in_place(|| (on_database(&server), on_database(&server)));
    let (total, connections) = (1500, 16);
    let to_a = blast(&a, total, connections, 0);
    let to_b = blast(&b, total, connections, total);
    let run_one = tokio::task::block_in_place(|| {
        a.wait_until(|lines| lines.iter().filter(|l| l["message"] == "accepted").count() >= 300);
        a.kill9();
        // The first run's log ends where its stderr closed.
        a.wait_for_log(|l| l["message"] == "(log closed)");
        all_lines(&a)
    });
    tokio::task::block_in_place(|| a.spawn());
    let mut acked = to_a.await.unwrap();
    acked.extend(to_b.await.unwrap());
    assert!(acked.len() >= total, "only {} acknowledged", acked.len());
    wait_all_seen(&[&b, &a], &acked).await;
    // Only what the killed daemon held may have been handled twice: one
    // of its sightings is in its first run.
    let first_run = sightings([&run_one[..]]);
    let everywhere = sightings([&all_lines(&a)[..], &all_lines(&b)[..]]);
    for (id, times) in &everywhere {
        if *times > 1 {
            assert!(
                first_run.contains_key(id),
                "{id} was handled {times} times while its lease held"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_id_posted_to_two_daemons_at_once_is_handled_once() {
    let Some(server) = tokio::task::block_in_place(|| {
        PgServer::start("one_delivery_id_posted_to_two_daemons_at_once_is_handled_once")
    }) else {
        return;
    };
    let (a, b) = tokio::task::block_in_place(|| (on_database(&server), on_database(&server)));
    let client = crate::harness::client();
    let mut accepted = Vec::new();
    for n in 0..20 {
        let post = |daemon: &Daemon| {
            client
                .post(daemon.url("/hooks/queue"))
                .header("Authorization", format!("Token {TOKEN}"))
                .json(&body("record", n))
                .send()
        };
        let (one, two) = tokio::join!(post(&a), post(&b));
        for answer in [one.unwrap(), two.unwrap()] {
            assert!(answer.status().is_success(), "{answer:?}");
            let reply: Value = answer.json().await.unwrap();
            for id in reply["accepted"].as_array().unwrap() {
                accepted.push(id.as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        accepted.len(),
        20,
        "each id accepted by one daemon: {accepted:?}"
    );
    wait_all_seen(&[&a, &b], &accepted).await;
    let everywhere = sightings([&all_lines(&a)[..], &all_lines(&b)[..]]);
    assert_eq!(everywhere.len(), 20);
    assert!(
        everywhere.values().all(|times| *times == 1),
        "{everywhere:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_nothing_acknowledged() {
    let Some(server) = tokio::task::block_in_place(|| {
        PgServer::start("a_database_restart_under_load_loses_nothing_acknowledged")
    }) else {
        return;
    };
    let (a, b) = tokio::task::block_in_place(|| (on_database(&server), on_database(&server)));
    let client = crate::harness::client();
    let to_a = blast(&a, 600, 8, 0);
    let to_b = blast(&b, 600, 8, 600);
    tokio::task::block_in_place(|| {
        a.wait_until(|lines| lines.iter().filter(|l| l["message"] == "accepted").count() >= 100);
        server.stop();
    });
    // While it is down: not ready, and queue routes push back.
    let ready = client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let refused = client
        .post(b.url("/hooks/queue"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&body("record", 10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    // Respond routes answer without the database; their log rows are dropped.
    let inline = client
        .post(b.url("/hooks/inline"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&body("record", 20_000))
        .send()
        .await
        .unwrap();
    assert!(inline.status().is_success(), "{inline:?}");
    tokio::task::block_in_place(|| server.resume());
    let mut acked = to_a.await.unwrap();
    acked.extend(to_b.await.unwrap());
    wait_all_seen(&[&a, &b], &acked).await;
    let ready = client.get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}
