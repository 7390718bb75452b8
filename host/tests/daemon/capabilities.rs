//! Plugin capabilities: granted per plugin, refused otherwise, with the
//! refusal logged and handed to the plugin as an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::{Daemon, DaemonBuilder, Route, within};

/// A loopback HTTP server for plugins to call.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A probe behind a respond goflow route; `grants` is its `[plugin.probe]`.
fn probe_daemon(grants: &str, plugins: &str) -> Daemon {
    probe_site(grants, plugins).start()
}

/// [`probe_daemon`], to be started once the caller has added to it.
pub fn probe_site(grants: &str, plugins: &str) -> DaemonBuilder {
    DaemonBuilder::new(&format!(
        r#"
{grants}
"#
    ))
    .route(
        Route::hook("probe", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["probe"])
            .respond(),
    )
    .plugins_settings(plugins)
    .plugin("probe")
    .plugin("router")
    .env("TEST_TOKEN", "t")
    .env("TEST_CRM_KEY", "k-123")
}

/// Sends `text` as a goflow call to the probe at `path`: its status and JSON.
pub async fn ask(daemon: &Daemon, path: &str, text: &str) -> (u16, Value) {
    ask_at(&daemon.url(path), text).await
}

/// [`ask`] by URL, for a task that cannot borrow the daemon.
pub async fn ask_at(url: &str, text: &str) -> (u16, Value) {
    let response = crate::harness::client()
        .post(url)
        .header("Authorization", "Token t")
        .json(&command(text))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A goflow call whose input text the probe runs as a command.
pub fn command(text: &str) -> Value {
    json!({"input": {"text": text}, "contact": {"uuid": "c-1", "urn": "tel:+5511999990000", "name": "Ana"}})
}

pub fn error_of(reply: &Value) -> &str {
    reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {reply}"))
}

#[tokio::test]
async fn crm_upserts_contacts_and_retries_on_5xx() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen, mut bodies) = mpsc::unbounded_channel::<Value>();
    let counter = calls.clone();
    let crm = serve(Router::new().route(
        "/contacts",
        post(move |body: axum::Json<Value>| async move {
            let _ = seen.send(body.0);
            // The CRM is down for the first call.
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        }),
    ))
    .await;
    let daemon = DaemonBuilder::new(&format!(
        r#"
[plugin.crm]
allow_http = ["http://{crm}"]
settings = {{ crm_url = "http://{crm}" }}
"#
    ))
    .route(
        Route::hook("contacts", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["crm"])
            .queue()
            .value("backoff_ms", "10"),
    )
    .plugin("crm")
    .env("TEST_TOKEN", "t")
    .start();
    let (status, _) = ask(&daemon, "/hooks/contacts", "hi").await;
    assert_eq!(status, 202);
    for _ in 0..2 {
        let body = within("a call to the CRM", bodies.recv()).await.unwrap();
        assert_eq!(body["phone"], "+5511999990000");
        assert_eq!(body["name"], "Ana");
        assert_eq!(body["id"], "c-1");
    }
    daemon.wait_for_log(|l| l["message"] == "plugin failed event" && l["attempt"] == 1);
    daemon.wait_for_log(|l| {
        l["message"] == "upserted contact +5511999990000" && l["plugin"] == "crm"
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// Multi-threaded: the CRM must answer while the test blocks on the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_drops_a_contact_the_crm_refuses_with_a_4xx() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let crm = serve(Router::new().route(
        "/contacts",
        post(move |_: axum::Json<Value>| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            StatusCode::UNPROCESSABLE_ENTITY
        }),
    ))
    .await;
    let daemon = DaemonBuilder::new(&format!(
        r#"
[plugin.crm]
allow_http = ["http://{crm}"]
settings = {{ crm_url = "http://{crm}" }}
"#
    ))
    .route(
        Route::hook("contacts", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["crm"])
            .queue()
            .value("backoff_ms", "10"),
    )
    .plugin("crm")
    .env("TEST_TOKEN", "t")
    .start();
    let (status, _) = ask(&daemon, "/hooks/contacts", "hi").await;
    assert_eq!(status, 202);
    // A dead letter at the first attempt: sending it again would not help.
    let dead =
        tokio::task::block_in_place(|| daemon.wait_for_log(|l| l["message"] == "dead letter"));
    assert_eq!(dead["attempt"], 1, "{dead}");
    assert!(
        dead["error"]
            .as_str()
            .is_some_and(|e| e.contains("CRM refused contact") && e.contains("422")),
        "{dead}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn fetch_is_refused_outside_the_grant() {
    let other = serve(Router::new().route("/ok", get(|| async { "other" }))).await;
    let granted = serve(
        Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route(
                "/away",
                get(move || async move {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("http://{other}/ok"))],
                    )
                        .into_response()
                }),
            )
            .route(
                "/here",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response() }),
            ),
    )
    .await;
    let port = granted.port();
    let daemon = probe_daemon(
        &format!(
            r#"[plugin.probe]
allow_http = ["http://{granted}", "http://localhost:{port}"]"#
        ),
        "",
    );
    // Granted: answered, also through a redirect that stays inside.
    for path in ["ok", "here"] {
        let (_, reply) = ask(
            &daemon,
            "/hooks/probe",
            &format!("fetch http://{granted}/{path}"),
        )
        .await;
        assert_eq!(reply, json!({"status": 200, "body": "hello"}), "{path}");
    }
    let refused = [
        (format!("fetch http://{other}/ok"), "is not in allow_http"),
        (
            format!("fetch http://localhost:{port}/ok"),
            "non-public addresses",
        ),
        (
            format!("fetch http://{granted}/away"),
            "is not in allow_http",
        ),
        (
            "fetch http://169.254.169.254/latest/meta-data".to_owned(),
            "is not in allow_http",
        ),
    ];
    for (n, (command, why)) in refused.iter().enumerate() {
        let (status, reply) = ask(&daemon, "/hooks/probe", command).await;
        assert_eq!(status, 200);
        let error = error_of(&reply);
        assert!(
            error.contains("plugin `probe`: fetch:") && error.contains(why),
            "{command}: {error}"
        );
        daemon.wait_for_nth(n + 1, |l| {
            l["message"] == "capability refused" && l["capability"] == "fetch"
        });
    }
}

#[tokio::test]
async fn a_slow_endpoint_is_cut_off_at_the_deadline() {
    let slow = serve(Router::new().route("/slow", get(std::future::pending::<String>))).await;
    let daemon = probe_daemon(
        &format!("[plugin.probe]\nallow_http = [\"http://{slow}\"]"),
        "timeout_ms = 300",
    );
    let (status, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://{slow}/slow"),
    )
    .await;
    assert_eq!(status, 502);
    assert!(error_of(&reply).contains("deadline of 300 ms"), "{reply}");
    let (status, _) = ask(&daemon, "/hooks/probe", "hello").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn kv_is_durable_private_and_limited() {
    let mut daemon = DaemonBuilder::new(
        r#"
[plugin.router]
kv = true

[plugin.probe]
kv = true
"#,
    )
    .route(
        Route::hook("router", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["router"])
            .respond(),
    )
    .route(
        Route::hook("probe", "goflow")
            .secret("env:TEST_TOKEN")
            .plugins(&["probe"])
            .respond(),
    )
    .plugins_settings("kv_max_total_bytes = 1000")
    .plugin("router")
    .plugin("probe")
    .env("TEST_TOKEN", "t")
    .start();
    for count in 1..=2 {
        let (_, reply) = ask(&daemon, "/hooks/router", "sales please").await;
        assert_eq!(reply, json!({"route": "sales", "count": count}));
    }
    daemon.terminate();
    daemon.spawn();
    let (_, reply) = ask(&daemon, "/hooks/router", "Sales again").await;
    assert_eq!(
        reply,
        json!({"route": "sales", "count": 3}),
        "KV survives a restart"
    );

    // The router's key is not in the probe's namespace.
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-get count/sales").await;
    assert_eq!(reply, json!({"value": null}));

    let long_key = "k".repeat(300);
    let (_, reply) = ask(&daemon, "/hooks/probe", &format!("kv-set {long_key} 1")).await;
    assert!(
        error_of(&reply).contains("keys must be 1 to 256 bytes"),
        "{reply}"
    );
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-set big 70000").await;
    assert!(
        error_of(&reply).contains("values are at most 65536 bytes"),
        "{reply}"
    );
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-set a 600").await;
    assert_eq!(reply, json!({"ok": true}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-set b 600").await;
    assert!(
        error_of(&reply).contains("would exceed 1000 bytes"),
        "{reply}"
    );
    // Overwriting within the budget is fine.
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-set a 900").await;
    assert_eq!(reply, json!({"ok": true}));
    // Listing by prefix and deleting.
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-set ab 1").await;
    assert_eq!(reply, json!({"ok": true}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-list a").await;
    assert_eq!(reply, json!({"keys": ["a", "ab"]}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-del a").await;
    assert_eq!(reply, json!({"ok": true}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-list a").await;
    assert_eq!(reply, json!({"keys": ["ab"]}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-get a").await;
    assert_eq!(reply, json!({"value": null}));
}

#[tokio::test]
async fn a_plugin_without_grants_gets_nothing() {
    let server = serve(Router::new().route("/ok", get(|| async { "hello" }))).await;
    let daemon = probe_daemon(
        r#"[plugin.router]
settings = { api_key = "env:TEST_CRM_KEY" }"#,
        "",
    );
    let (_, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://{server}/ok"),
    )
    .await;
    assert!(
        error_of(&reply).contains("plugin `probe`: fetch: not granted"),
        "{reply}"
    );
    let (_, reply) = ask(&daemon, "/hooks/probe", "kv-get anything").await;
    assert!(
        error_of(&reply).contains("plugin `probe`: kv: not granted"),
        "{reply}"
    );
    let (_, reply) = ask(&daemon, "/hooks/probe", "setting api_key").await;
    assert_eq!(reply, json!({"value": null}), "another plugin's setting");
    let (_, reply) = ask(&daemon, "/hooks/probe", "env").await;
    assert_eq!(reply, json!({"env": 0, "fs": false}));
}

#[tokio::test]
async fn settings_resolve_env_and_stay_out_of_logs() {
    let daemon = probe_daemon(
        r#"[plugin.probe]
settings = { api_key = "env:TEST_CRM_KEY", region = "br" }"#,
        "",
    );
    let (_, reply) = ask(&daemon, "/hooks/probe", "setting api_key").await;
    assert_eq!(reply, json!({"value": "k-123"}));
    let (_, reply) = ask(&daemon, "/hooks/probe", "setting region").await;
    assert_eq!(reply, json!({"value": "br"}));
    // The second call's line comes after anything the first one logged.
    daemon.wait_plugin_calls("probe", 2);
    assert!(
        daemon
            .log_lines(|l| l.to_string().contains("k-123"))
            .is_empty()
    );
}

#[tokio::test]
async fn a_chatty_plugin_is_rate_limited() {
    let daemon = probe_daemon("", "log_lines_per_sec = 10");
    let started = std::time::Instant::now();
    let (_, reply) = ask(&daemon, "/hooks/probe", "chatter 500").await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(reply, json!({"ok": true}));
    // A marker after the chatter: every chatter line that made it is in.
    let (_, _) = ask(&daemon, "/hooks/probe", "hello").await;
    daemon.wait_plugin_calls("probe", 2);
    let lines = daemon.log_lines(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("chatter "))
    });
    // The burst (twice the rate) and what refilled while the call ran,
    // which the call's own duration bounds from above however slow the
    // machine (the exact bucket is the unit test's, on its own clock).
    let most = 20 + (10.0 * took).ceil() as usize;
    assert!(
        (20..=most).contains(&lines.len()),
        "{} lines got through in {took} s",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .all(|l| l["plugin"] == "probe" && l["route"] == "probe")
    );
}

/// wasi:http is never granted. A JavaScript plugin imports its types
/// anyway (the engine's `fetch` is built on them): it loads and answers,
/// and a `fetch` fails its event, naming what was refused.
#[tokio::test]
async fn wasi_http_is_linked_only_as_refusals() {
    let daemon = DaemonBuilder::new("")
        .route(
            Route::hook("http", "goflow")
                .secret("env:TEST_TOKEN")
                .plugins(&["http-js"])
                .respond(),
        )
        .plugin("http-js")
        .plugins_settings(&format!(
            "cache_dir = {:?}",
            crate::harness::shared_cache_dir()
        ))
        .env("TEST_TOKEN", "t")
        .start();
    let send = |input: &'static str| {
        crate::harness::client()
            .post(daemon.url("/hooks/http"))
            .header("Authorization", "Token t")
            .json(&json!({"input": {"text": input}}))
            .send()
    };
    let response = send("hello").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"input":"hello"}"#);

    let response = send("fetch").await.unwrap();
    assert_eq!(response.status(), 502);
    let line = daemon.wait_for_log(|l| l["message"] == "plugin failed event");
    assert!(
        line.to_string().contains("is not available to plugins"),
        "{line}"
    );
    assert!(line.to_string().contains("wasi:http/types@"), "{line}");
    // The plugin keeps serving with a fresh instance.
    let response = send("again").await.unwrap();
    assert_eq!(response.status(), 200);
}
