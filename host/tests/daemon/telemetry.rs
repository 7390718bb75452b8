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
    .server_settings(&format!("metrics_listen = \"127.0.0.1:0\"\n{server}"))
    .plugin("crm")
    .env("TEST_TOKEN", "t")
    // Batches leave every 50 ms rather than every 5 s.
    .env("OTEL_BSP_SCHEDULE_DELAY", "50")
    .start()
}

/// The server span's name, as HTTP's semantic conventions make it.
const REQUEST: &str = "POST /hooks/contacts";
/// The `fetch` client span's name: the method alone, as the URL may
/// hold tokens.
const FETCH: &str = "POST";

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
            named(spans, FETCH).len() == 2
                && named(spans, "attempt").len() == 2
                && named(spans, REQUEST).len() == 1
        })
        .await;
    let request = one(&spans, REQUEST);
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
    let fetches = named(&spans, FETCH);
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

    // The plugin-call histogram links its buckets to this trace.
    let exposition = crate::harness::client()
        .get(crate::exposition::metrics_url(&daemon))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exemplar = format!("# {{trace_id=\"{trace}\",span_id=\"");
    assert!(
        exposition.lines().any(|line| {
            line.starts_with("wirehook_plugin_call_duration_seconds_bucket{")
                && line.contains(&exemplar)
        }),
        "an exemplar of this trace: {exposition}"
    );
    crate::exposition::parse(&exposition);

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
            !named(spans, REQUEST).is_empty()
        })
        .await;
    let request = one(&spans, REQUEST);
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
            !named(spans, REQUEST).is_empty()
        })
        .await;
    let request = one(&spans, REQUEST);
    assert_eq!(request.trace_id, upstream, "{request:#?}");
    assert_eq!(request.parent_span_id, parent, "{request:#?}");
}

/// The probe with the KV capability, traced to `receiver`.
fn kv_daemon(receiver: &Receiver) -> Daemon {
    crate::capabilities::probe_site(
        &format!(
            "[plugin.probe]\nkv = true\n\n[telemetry]\notlp_endpoint = \"{}\"\n",
            receiver.endpoint()
        ),
        "",
    )
    .env("OTEL_BSP_SCHEDULE_DELAY", "50")
    .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_calls_are_spans_under_the_plugin_and_name_no_key() {
    let receiver = Receiver::start().await;
    let daemon = kv_daemon(&receiver);
    let (status, reply) = ask(&daemon, "/hooks/probe", "kv-set secret-key-7d1e 5").await;
    assert_eq!((status, &reply["ok"]), (200, &Value::Bool(true)), "{reply}");
    let (status, _) = ask(&daemon, "/hooks/probe", "kv-get secret-key-7d1e").await;
    assert_eq!(status, 200);

    let spans = receiver
        .wait_for("both KV calls' spans and their parents", |spans| {
            // A parent ends, and so is exported, after its children.
            let with_parent = |name| {
                named(spans, name)
                    .iter()
                    .any(|kv| spans.iter().any(|s| s.span_id == kv.parent_span_id))
            };
            with_parent("kv set") && with_parent("kv get")
        })
        .await;
    for (name, operation, outcome) in [("kv set", "set", "written"), ("kv get", "get", "found")] {
        let kv = one(&spans, name);
        assert_eq!(kv.attr("db.operation.name"), Some(operation), "{kv:#?}");
        assert_eq!(kv.attr("wirehook.plugin"), Some("probe"), "{kv:#?}");
        assert_eq!(kv.attr("wirehook.outcome"), Some(outcome), "{kv:#?}");
        let parent = spans
            .iter()
            .find(|s| s.span_id == kv.parent_span_id)
            .unwrap_or_else(|| panic!("the parent of `{name}`: {spans:#?}"));
        assert_eq!(parent.name, "plugin", "{spans:#?}");
    }
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains("secret-key-7d1e"),
                "`{key}` of `{}` holds the key: {value}",
                span.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_is_a_span_that_says_how_it_ended() {
    let receiver = Receiver::start().await;
    let daemon = kv_daemon(&receiver);
    daemon.edit_config(|config| config.replace("kv = true", "kv = false"));
    let spans = receiver
        .wait_for("the reload's span", |spans| {
            !named(spans, "reload").is_empty()
        })
        .await;
    let reload = one(&spans, "reload");
    assert_eq!(
        reload.attr("wirehook.outcome"),
        Some("swapped"),
        "{reload:#?}"
    );
    assert_eq!(reload.parent_span_id, "", "a trace of its own: {reload:#?}");

    daemon.edit_config(|config| config.replace("kv = false", "kv = \"yes\""));
    let spans = receiver
        .wait_for("the refused reload's span", |spans| {
            named(spans, "reload").len() == 2
        })
        .await;
    let refused = named(&spans, "reload")
        .into_iter()
        .find(|s| s.attr("wirehook.outcome") == Some("refused"))
        .unwrap_or_else(|| panic!("a refused reload: {spans:#?}"));
    assert_eq!(refused.status_code, 2, "an error: {refused:#?}");
    assert_eq!(refused.attr("wirehook.problems"), Some("1"), "{refused:#?}");
}
