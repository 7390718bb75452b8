//! A plugin's instances: at most `pool_size` at once. A call beyond them
//! waits for one to come back, and says so in the metrics, rather than
//! instantiating another that the full pool would throw away.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::exposition::{metrics_url, scrape};
use crate::harness::DaemonBuilder;

/// A loopback endpoint that reports each request it gets and answers it
/// only when the test adds a permit to `gate`.
struct Held {
    arrived: mpsc::UnboundedSender<()>,
    gate: Semaphore,
}

async fn hold(State(held): State<Arc<Held>>) -> &'static str {
    held.arrived.send(()).unwrap();
    held.gate.acquire().await.unwrap().forget();
    "released"
}

#[tokio::test]
async fn calls_beyond_pool_size_wait_for_an_instance() {
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let held = Arc::new(Held {
        arrived,
        gate: Semaphore::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/hold", get(hold))
        .with_state(held.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let daemon = DaemonBuilder::new(&format!(
        r#"
[[route]]
name = "probe"
path = "/hooks/probe"
provider = "goflow"
secret = "env:TEST_TOKEN"
plugins = ["probe"]
mode = "respond"

[plugin.probe]
allow_http = ["http://{server}"]
"#
    ))
    .plugins_settings("pool_size = 2\ntimeout_ms = 60000\nfetch_timeout_ms = 60000")
    .server_settings("metrics_listen = \"127.0.0.1:0\"")
    .plugin("probe")
    .env("TEST_TOKEN", "t")
    .start();
    let metrics = metrics_url(&daemon);
    let client = reqwest::Client::new();
    let ask = || {
        let request = client
            .post(daemon.url("/hooks/probe"))
            .header("Authorization", "Token t")
            .json(&json!({"input": {"text": format!("fetch http://{server}/hold")}, "contact": {"uuid": "c-1"}}))
            .send();
        tokio::spawn(async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    };
    let calls: Vec<_> = (0..3).map(|_| ask()).collect();

    // Two instances are busy in the endpoint; the third call waits.
    arrivals.recv().await.unwrap();
    arrivals.recv().await.unwrap();
    daemon.wait_for_log(|l| l["message"] == "every instance busy: the call waits for one");
    let samples = scrape(&client, &metrics).await;
    assert_eq!(
        samples[r#"wirehook_plugin_waiting_calls{plugin="probe"}"#],
        1.0
    );
    assert!(
        arrivals.try_recv().is_err(),
        "a third instance ran while two were busy"
    );

    // One comes back: the waiting call gets it.
    held.gate.add_permits(1);
    arrivals.recv().await.unwrap();
    held.gate.add_permits(2);
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("released"), "{body}");
    }
    let samples = scrape(&client, &metrics).await;
    assert_eq!(
        samples[r#"wirehook_plugin_waiting_calls{plugin="probe"}"#],
        0.0
    );
}
