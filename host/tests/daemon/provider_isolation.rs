//! A provider plugin's `isolation`: by default every request gets a fresh
//! instance, so nothing one request leaves in a verifier reaches another
//! request's answer; `isolation = "pooled"` keeps instances between a
//! route's requests, and drops one whose call failed.

use serde_json::Value;

use crate::harness::provider::post;
use crate::harness::{DaemonBuilder, Route};

/// What `leaky` in `remember` mode answered it kept before `body`.
async fn previous(daemon: &crate::harness::Daemon, path: &str, body: &str) -> Value {
    let headers = [("x-leaky-mode", "remember".to_owned())];
    let (status, text) = post(daemon, path, &headers, body).await;
    assert_eq!(status, 200, "{text}");
    let echo: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(echo["kind"], "remember", "{echo}");
    echo["raw_json"]["previous"].clone()
}

#[tokio::test]
async fn requests_share_a_verifier_only_when_the_route_pools_it() {
    let route = |name: &str| {
        Route::hook(name, "plugin:leaky")
            .secret("env:LEAKY_SECRET")
            .plugins(&["probe"])
            .respond()
    };
    let daemon = DaemonBuilder::new("")
        .route(route("fresh"))
        .route(route("pooled").text("isolation", "pooled"))
        .plugin_file("leaky", &crate::harness::plugin_wasm("leaky"))
        .plugin("probe")
        .env("LEAKY_SECRET", "isolation-test-secret")
        .start();

    assert_eq!(
        previous(&daemon, "/hooks/fresh", r#"{"n":1}"#).await,
        Value::Null
    );
    assert_eq!(
        previous(&daemon, "/hooks/fresh", r#"{"n":2}"#).await,
        Value::Null,
        "a fresh instance per request keeps nothing"
    );

    assert_eq!(
        previous(&daemon, "/hooks/pooled", r#"{"n":1}"#).await,
        Value::Null
    );
    assert_eq!(
        previous(&daemon, "/hooks/pooled", r#"{"n":2}"#).await,
        r#"{"n":1}"#,
        "a pooled instance serves the next request"
    );
    // A call that traps loses its instance: the next starts afresh.
    let trap = [("x-leaky-mode", "trap".to_owned())];
    let (status, text) = post(&daemon, "/hooks/pooled", &trap, "{}").await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(
        previous(&daemon, "/hooks/pooled", r#"{"n":3}"#).await,
        Value::Null
    );
}
