//! The daemon run in-process through the library's `daemon::run`, as
//! `wirehook run` runs it: the port is the bound listener's, known without
//! reading a log, and the daemon stops when its shutdown future resolves.

use serde_json::{Value, json};
use wirehook::daemon::{self, Listeners, Stopped};

use crate::goflow::call_webhook;
use crate::harness::{COMPILE_WAIT, Route, WAIT, client, plugin_wasm, shared_cache_dir};

const TOKEN: &str = "in-process-token-5e1b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_in_process_and_stops_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        plugin_wasm("order-status"),
        plugins.join("order-status.wasm"),
    )
    .unwrap();
    let route = Route::new("orders", "/hooks/orders", "goflow")
        .secret(TOKEN)
        .plugins(&["order-status"])
        .mode("respond");
    let path = dir.path().join("wirehook.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[plugins]\ndir = {:?}\ncache_dir = {:?}\n[reload]\nwatch = false\n\n{route}",
            dir.path().join("data"),
            plugins,
            shared_cache_dir(),
        ),
    )
    .unwrap();
    // Loading compiles the plugin: off the async workers.
    let runtime = tokio::runtime::Handle::current();
    let loaded = tokio::time::timeout(
        COMPILE_WAIT,
        tokio::task::spawn_blocking(move || runtime.block_on(daemon::load(&path, true))),
    )
    .await
    .expect("loading within the compile wait")
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    let listeners = Listeners::bind(&loaded.config).await.unwrap();
    let addr = listeners.local_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon::run(loaded, listeners, async move {
        let _ = stopped.await;
    }));

    let client = client();
    let url = format!("http://{addr}/hooks/orders");
    let response = client
        .post(&url)
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply, json!({"number": "CU001", "status": "Shipped"}));
    let refused = client
        .post(&url)
        .header("Authorization", "Token guess")
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    stop.send(()).unwrap();
    let outcome = tokio::time::timeout(WAIT, running)
        .await
        .expect("the daemon stops within the wait")
        .unwrap()
        .unwrap();
    assert_eq!(outcome, Stopped::Asked);
    // Stopped means the listener is closed (a new client: the old one's
    // pooled connection is not a new connect).
    let after = crate::harness::client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "{after:?}");
}
