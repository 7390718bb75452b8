//! Where a plugin's `fetch` connects, attacked: the daemon's environment
//! names a proxy (a loopback listener the test owns), and no request may
//! reach it, since a proxy resolves names itself, past the address check.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::capabilities::{ask, probe_site, serve};

#[tokio::test]
async fn fetch_ignores_proxy_variables() {
    let proxied = Arc::new(AtomicUsize::new(0));
    let counter = proxied.clone();
    let proxy = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "proxied" }
    }))
    .await;
    let target = serve(Router::new().route("/ok", get(|| async { "direct" }))).await;
    let port = target.port();
    let proxy_url = format!("http://{proxy}");
    let mut site = probe_site(
        &format!(
            r#"[plugin.probe]
allow_http = ["http://{target}", "http://localhost:{port}"]"#
        ),
        "",
    );
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        site = site
            .env(name, &proxy_url)
            .env(&name.to_ascii_lowercase(), &proxy_url);
    }
    // Nothing inherited may exempt loopback from the proxy.
    let daemon = site.env("NO_PROXY", "").env("no_proxy", "").start();

    // Granted by address: straight to the target.
    let (status, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://{target}/ok"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({"status": 200, "body": "direct"}));
    // Granted by name: checked here, and refused (a proxy would have
    // resolved `localhost` itself and fetched it).
    let (status, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://localhost:{port}/ok"),
    )
    .await;
    assert_eq!(status, 200);
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(error.contains("non-public addresses"), "{reply}");
    // Both fetches were answered, so any request to the proxy was made.
    assert_eq!(proxied.load(Ordering::SeqCst), 0);
}
