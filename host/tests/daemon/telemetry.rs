//! OpenTelemetry traces, as a collector receives them: one queued goflow
//! call followed from the socket through the store, a retry and the
//! plugin's `fetch` to the CRM, which is sent the trace's context; a
//! forged request's span; and whose `traceparent` is believed.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

use crate::capabilities::{ask, serve};
use crate::harness::otlp::{Receiver, Span};
use crate::harness::{Daemon, DaemonBuilder};

/// A goflow queue route to the `crm` plugin, traced to `receiver`.
fn daemon(receiver: &Receiver, crm: &str, server: &str) -> Daemon {
    DaemonBuilder::new(&format!(
        r#"
[[route]]
name = "contacts"
path = "/hooks/contacts"
provider = "goflow"
secret = "env:TEST_TOKEN"
plugins = ["crm"]
mode = "queue"
backoff_ms = 10

[plugin.crm]
allow_http = ["http://{crm}"]
settings = {{ crm_url = "http://{crm}" }}

[telemetry]
otlp_endpoint = "{}"
service_name = "wirehook-under-test"
"#,
        receiver.endpoint()
    ))
    .server_settings(server)
    .plugin("crm")
    .env("TEST_TOKEN", "t")
    // Batches leave every 50 ms rather than every 5 s.
    .env("OTEL_BSP_SCHEDULE_DELAY", "50")
    .start()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one `{name}` span: {spans:#?}");
    found[0]
}

/// The CRM: down for its first call, then up; keeps each call's
/// `traceparent`.
async fn crm() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let parents = Arc::new(Mutex::new(Vec::new()));
    let seen = parents.clone();
    let addr = serve(Router::new().route(
        "/contacts",
        post(move |headers: HeaderMap| async move {
            let mut seen = seen.lock().unwrap();
            seen.push(
                headers
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_owned()),
            );
            if seen.len() == 1 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            }
        }),
    ))
    .await;
    (addr.to_string(), parents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_call_is_one_trace_across_the_store_the_retry_and_the_crm() {
    let receiver = Receiver::start().await;
    let (crm, parents) = crm().await;
    let daemon = daemon(&receiver, &crm, "");
    let (status, _) = ask(&daemon, "/hooks/contacts", "hi").await;
    assert_eq!(status, 202);

    let spans = receiver
        .wait_for("both attempts' spans", |spans| {
            named(spans, "fetch").len() == 2
                && named(spans, "attempt").len() == 2
                && named(spans, "request").len() == 1
        })
        .await;
    let request = one(&spans, "request");
    let trace = &request.trace_id;
    assert!(
        spans.iter().all(|s| &s.trace_id == trace),
        "one trace: {spans:#?}"
    );
    assert!(spans.iter().all(|s| s.service == "wirehook-under-test"));
    assert_eq!(request.parent_span_id, "", "a new trace: {request:#?}");
    assert_eq!(request.attr("http.request.method"), Some("POST"));
    assert_eq!(request.attr("http.route"), Some("/hooks/contacts"));
    assert_eq!(request.attr("http.response.status_code"), Some("202"));
    assert_eq!(request.attr("wirehook.route"), Some("contacts"));
    assert_eq!(request.attr("wirehook.provider"), Some("goflow"));
    assert_eq!(request.attr("client.address"), Some("127.0.0.1"));

    let child_of = |span: &Span, parent: &Span| {
        assert_eq!(
            span.parent_span_id, parent.span_id,
            "`{}` under `{}`: {spans:#?}",
            span.name, parent.name
        );
    };
    child_of(one(&spans, "verify"), request);
    child_of(one(&spans, "decode"), request);
    let admission = one(&spans, "admission");
    child_of(admission, request);
    assert_eq!(admission.attr("wirehook.accepted"), Some("1"));
    child_of(one(&spans, "commit"), admission);

    let mut attempts = named(&spans, "attempt");
    attempts.sort_by_key(|a| a.attr("wirehook.attempt").map(str::to_owned));
    assert_eq!(attempts[0].attr("wirehook.attempt"), Some("1"));
    assert_eq!(attempts[0].attr("wirehook.outcome"), Some("retry"));
    assert_eq!(attempts[0].status_code, 2, "an error: {:#?}", attempts[0]);
    // The retry was claimed from the store: its parent came from there.
    assert_eq!(attempts[1].attr("wirehook.attempt"), Some("2"));
    assert_eq!(attempts[1].attr("wirehook.outcome"), Some("delivered"));
    let plugins = named(&spans, "plugin");
    let fetches = named(&spans, "fetch");
    let crm_parents = parents.lock().unwrap().clone();
    assert_eq!(crm_parents.len(), 2);
    for (i, attempt) in attempts.iter().enumerate() {
        child_of(attempt, admission);
        let plugin = plugins
            .iter()
            .find(|p| p.parent_span_id == attempt.span_id)
            .unwrap_or_else(|| panic!("a plugin span under attempt {i}: {spans:#?}"));
        assert_eq!(plugin.attr("wirehook.plugin"), Some("crm"));
        assert!(plugin.attr("wirehook.duration_us").is_some(), "{plugin:#?}");
        assert!(
            plugin.attr("wirehook.instance_reused").is_some(),
            "{plugin:#?}"
        );
        let fetch = fetches
            .iter()
            .find(|f| f.parent_span_id == plugin.span_id)
            .unwrap_or_else(|| panic!("a fetch span under plugin {i}: {spans:#?}"));
        assert_eq!(fetch.attr("http.request.method"), Some("POST"));
        assert_eq!(
            fetch.attr("server.address"),
            Some(format!("http://{crm}").as_str())
        );
        // The CRM was told the trace and the fetch span it is under.
        assert_eq!(
            crm_parents[i].as_deref(),
            Some(format!("00-{trace}-{}-01", fetch.span_id).as_str()),
            "call {i}"
        );
    }
    assert!(
        plugins
            .iter()
            .all(|p| p.attr("wirehook.outcome") == Some("handled")
                || p.attr("wirehook.outcome") == Some("retry"))
    );
    assert_eq!(
        fetches
            .iter()
            .filter_map(|f| f.attr("http.response.status_code"))
            .collect::<std::collections::BTreeSet<_>>(),
        ["200", "503"].into_iter().collect()
    );

    // `TRACE_PICTURE=docs/trace.txt` keeps the README's picture.
    if let Some(path) = std::env::var_os("TRACE_PICTURE") {
        std::fs::write(path, crate::harness::otlp::waterfall(&spans)).unwrap();
    }

    // The plugin's own log line names the span it was written in.
    let line = tokio::task::block_in_place(|| {
        daemon.wait_for_log(|l| {
            l["plugin"] == "crm" && l["message"] == "upserted contact +5511999990000"
        })
    });
    assert_eq!(line["trace_id"].as_str(), Some(trace.as_str()), "{line}");
    let plugin_ids: Vec<_> = plugins
        .iter()
        .map(|p| Value::from(p.span_id.clone()))
        .collect();
    assert!(plugin_ids.contains(&line["span_id"]), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_request_s_span_says_the_refusal_and_nothing_of_its_body() {
    let receiver = Receiver::start().await;
    let (crm, parents) = crm().await;
    let daemon = daemon(&receiver, &crm, "");
    let upstream = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = crate::harness::client()
        .post(daemon.url("/hooks/contacts"))
        .header("Authorization", "Token forged-token-9f1c")
        .header("traceparent", format!("00-{upstream}-00f067aa0ba902b7-01"))
        .body(r#"{"input": {"text": "body-marker-5e2a"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let spans = receiver
        .wait_for("the refused request's span", |spans| {
            !named(spans, "request").is_empty()
        })
        .await;
    let request = one(&spans, "request");
    assert_eq!(request.attr("http.response.status_code"), Some("401"));
    assert_eq!(request.status_code, 2, "an error: {request:#?}");
    assert!(
        request
            .attr("wirehook.refusal")
            .is_some_and(|r| !r.is_empty()),
        "{request:#?}"
    );
    // The peer is no trusted proxy: its traceparent is not believed.
    assert_ne!(&request.trace_id, upstream);
    assert_eq!(request.parent_span_id, "");
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("body-marker") && !value.contains("forged-token"),
                "`{key}` of `{}` holds the body or the token: {value}",
                span.name
            );
        }
    }
    assert!(named(&spans, "admission").is_empty(), "{spans:#?}");
    assert!(parents.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_s_traceparent_is_joined() {
    let receiver = Receiver::start().await;
    let (crm, _) = crm().await;
    let daemon = daemon(&receiver, &crm, r#"trusted_proxies = ["127.0.0.1/32"]"#);
    let upstream = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = crate::harness::client()
        .post(daemon.url("/hooks/contacts"))
        .header("Authorization", "Token wrong")
        .header("traceparent", format!("00-{upstream}-{parent}-01"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let spans = receiver
        .wait_for("the request's span", |spans| {
            !named(spans, "request").is_empty()
        })
        .await;
    let request = one(&spans, "request");
    assert_eq!(request.trace_id, upstream, "{request:#?}");
    assert_eq!(request.parent_span_id, parent, "{request:#?}");
}
