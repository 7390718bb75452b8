//! What tracing costs a request when `[telemetry]` is absent: the span
//! callsites a respond request passes (the server span and its fields,
//! verify, decode, the plugin call and its records), under the daemon's
//! own subscriber set up as `wirehook run` sets it without a collector,
//! against the same work with no span at all. The difference is the
//! whole cost of tracing switched off; bench/README.md sets it against
//! row 2's CPU per request.

#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing::Instrument as _;
use tracing::field::Empty;
use wirehook::config::{LogFormat, TelemetryConfig};
use wirehook::telemetry::TARGET;

/// The request path's spans, made and recorded as the server and the
/// dispatcher make them.
fn traced_request(route: &str, plugin: &str) -> u64 {
    let request = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = "POST",
        http.route = Empty,
        http.response.status_code = Empty,
        client.address = Empty,
        network.peer.address = "127.0.0.1",
        wirehook.route = Empty,
        wirehook.provider = Empty,
        wirehook.refusal = Empty,
    );
    if !request.is_disabled() {
        request.record("http.route", route);
    }
    let verified = tracing::info_span!(target: TARGET, "verify", otel.status_code = Empty)
        .in_scope(|| black_box(route.len()));
    let decoded = tracing::info_span!(target: TARGET, "decode", otel.status_code = Empty)
        .in_scope(|| black_box(plugin.len()));
    let span = tracing::info_span!(
        target: TARGET,
        "plugin",
        otel.status_code = Empty,
        wirehook.plugin = %plugin,
        wirehook.outcome = Empty,
        wirehook.duration_us = Empty,
        wirehook.instance_reused = Empty,
    );
    let handled = ready_now(async { black_box(verified + decoded) }.instrument(span.clone()));
    if !span.is_disabled() {
        span.record("wirehook.outcome", "handled");
    }
    if !request.is_disabled() {
        request.record("http.response.status_code", 200);
    }
    handled as u64
}

/// Polls a future that is ready at once, as the plugin call's future is
/// here, without a runtime.
fn ready_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the future is ready at once"),
    }
}

fn untraced(c: &mut Criterion) {
    let telemetry = TelemetryConfig::default();
    assert!(telemetry.otlp_endpoint.is_none());
    let exporter = wirehook::logging::init(LogFormat::Json, Some("info"), &telemetry);
    assert!(exporter.is_none(), "no collector, no exporter");
    let mut group = c.benchmark_group("telemetry off");
    group.bench_function("a respond request's spans", |b| {
        b.iter(|| traced_request(black_box("/hooks/orders"), black_box("order-status")))
    });
    group.bench_function("the same work without spans", |b| {
        b.iter(|| {
            let (route, plugin) = (black_box("/hooks/orders"), black_box("order-status"));
            black_box(route.len()) + black_box(plugin.len())
        })
    });
    group.finish();
}

criterion_group!(benches, untraced);
criterion_main!(benches);
