//! An OTLP/HTTP trace receiver on loopback: what a collector would be
//! sent, decoded with opentelemetry-proto's types, kept flat for tests to
//! look through.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;
use tokio::sync::Notify;

use super::within;

/// One span as received.
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
    pub attributes: HashMap<String, String>,
    /// 2 is an error.
    pub status_code: i32,
    pub service: String,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Span>>,
    grew: Notify,
}

/// The receiver; its address is what `[telemetry] otlp_endpoint` names.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Received>,
}

impl Receiver {
    pub async fn start() -> Self {
        let received = Arc::new(Received::default());
        let router = Router::new()
            .route("/v1/traces", post(export))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { addr, received }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.received.spans.lock().unwrap().clone()
    }

    /// Waits (with the harness's deadline) until `done` says the spans
    /// received hold what it looks for, and returns them.
    pub async fn wait_for(&self, what: impl Display, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        within(what, async {
            loop {
                let grew = self.received.grew.notified();
                let spans = self.spans();
                if done(&spans) {
                    return spans;
                }
                grew.await;
            }
        })
        .await
    }
}

async fn export(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| text(v.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    name: span.name,
                    trace_id: hex::encode(span.trace_id),
                    span_id: hex::encode(span.span_id),
                    parent_span_id: hex::encode(span.parent_span_id),
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| {
                            let value = text(kv.value.as_ref().and_then(|v| v.value.as_ref()));
                            (kv.key, value)
                        })
                        .collect(),
                    status_code: span.status.map_or(0, |s| s.code),
                    service: service.clone(),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                });
            }
        }
    }
    received.spans.lock().unwrap().extend(spans);
    received.grew.notify_waiters();
    StatusCode::OK
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// One trace as a text waterfall: each span under its parent, with its
/// start and length against the trace's first start, and a bar.
pub fn waterfall(spans: &[Span]) -> String {
    const WIDTH: f64 = 40.0;
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    let total = (end - start).max(1) as f64;
    let mut out = String::new();
    let mut roots: Vec<&Span> = spans
        .iter()
        .filter(|s| !spans.iter().any(|p| p.span_id == s.parent_span_id))
        .collect();
    roots.sort_by_key(|s| s.start_ns);
    fn walk(spans: &[Span], span: &Span, depth: usize, draw: &mut dyn FnMut(&Span, usize)) {
        draw(span, depth);
        let mut children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
            .collect();
        children.sort_by_key(|s| s.start_ns);
        for child in children {
            walk(spans, child, depth + 1, draw);
        }
    }
    let mut draw = |span: &Span, depth: usize| {
        let from = ((span.start_ns - start) as f64 / total * WIDTH) as usize;
        let len = (((span.end_ns - span.start_ns) as f64 / total * WIDTH).ceil() as usize).max(1);
        let label = format!("{}{}", "  ".repeat(depth), span.name);
        let detail = [
            "wirehook.attempt",
            "wirehook.outcome",
            "http.response.status_code",
        ]
        .iter()
        .filter_map(|k| {
            span.attr(k)
                .map(|v| format!("{}={v}", k.rsplit('.').next().unwrap()))
        })
        .collect::<Vec<_>>()
        .join(" ");
        out.push_str(&format!(
            "{label:<22} {:>9.3} ms {:>9.3} ms |{}{}{}| {detail}\n",
            (span.start_ns - start) as f64 / 1e6,
            (span.end_ns - span.start_ns) as f64 / 1e6,
            " ".repeat(from.min(WIDTH as usize)),
            "█".repeat(len.min(WIDTH as usize - from.min(WIDTH as usize)).max(1)),
            " ".repeat((WIDTH as usize).saturating_sub(from + len)),
        ));
    };
    for root in roots {
        walk(spans, root, 0, &mut draw);
    }
    out
}
