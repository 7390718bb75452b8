//! A plugin's instances: at most `pool_size` at once, fewer when its
//! memory budget holds fewer. A call beyond them waits for one to come
//! back, and says so in the metrics, rather than instantiating another
//! that the full pool would throw away.

use crate::capabilities::{ask_at, probe_site};
use crate::exposition::{metrics_url, scrape};
use crate::gate::Gate;
use crate::harness::within;

// Multi-threaded: the log is waited for by blocking, and the calls'
// tasks must go on being driven meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_pool_size_wait_for_an_instance() {
    calls_beyond_two_instances_wait("", "pool_size = 2").await;
}

/// `[plugin.NAME] pool_size` bounds that plugin, whatever `[plugins]` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_own_pool_size_bounds_its_instances() {
    calls_beyond_two_instances_wait("pool_size = 2", "pool_size = 16").await;
}

/// A memory budget that holds two of the probe's instances (each starts
/// with 17 wasm pages, 1.06 MiB) bounds it to two, whatever `pool_size`
/// says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_budget_bounds_a_plugins_instances() {
    calls_beyond_two_instances_wait("", "pool_size = 16\nmemory_budget_mb = 3").await;
}

/// `[plugin.NAME] memory_budget_mb` bounds that plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_own_memory_budget_bounds_its_instances() {
    calls_beyond_two_instances_wait("memory_budget_mb = 3", "memory_budget_mb = 64").await;
}

/// Three calls that each hold an instance until released, with the probe
/// plugin granted `grant` and `[plugins]` set to `plugins`: two run, the
/// third waits for one of theirs.
async fn calls_beyond_two_instances_wait(grant: &str, plugins: &str) {
    let gate = Gate::serve().await;
    let daemon = probe_site(
        &format!(
            "[plugin.probe]\nallow_http = [\"{}\"]\n{grant}",
            gate.origin()
        ),
        &format!("{plugins}\ntimeout_ms = 60000\nfetch_timeout_ms = 60000"),
    )
    .server_settings("metrics_listen = \"127.0.0.1:0\"")
    .start();
    let metrics = metrics_url(&daemon);
    let client = crate::harness::client();
    let waiting = r#"wirehook_plugin_waiting_calls{plugin="probe"}"#;
    // Each call in its own task: the test blocks below while waiting for
    // the log, and a call polled by this task would stall with it.
    let (url, fetch) = (daemon.url("/hooks/probe"), gate.command());
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let (url, fetch) = (url.clone(), fetch.clone());
            tokio::spawn(async move { ask_at(&url, &fetch).await })
        })
        .collect();
    // Two instances are busy in the endpoint; the third call waits.
    for n in 1..=2 {
        let released = gate.arrival(&format!("fetch {n}")).await;
        assert_eq!(released, 0);
    }
    tokio::task::block_in_place(|| {
        daemon.wait_for_log(|l| l["message"] == "every instance busy: the call waits for one")
    });
    assert_eq!(scrape(&client, &metrics).await[waiting], 1.0);
    // One comes back: the waiting call gets it. Its fetch arrives only
    // now; one from a third instance would have come with nothing released.
    gate.release(1);
    let released = gate.arrival("the third fetch").await;
    assert_eq!(released, 1, "a third instance ran while two were busy");
    gate.release(2);
    for call in calls {
        let (status, reply) = within("a held call to answer", call).await.unwrap();
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["body"], "released", "{reply}");
    }
    assert_eq!(scrape(&client, &metrics).await[waiting], 0.0);
}
