//! One call of the Rust order-status plugin through wirehook's own
//! runtime (`Runtime::load`, `Plugin::handle`), for a goflow flow call
//! decoded by the goflow provider: from a warm pooled instance, and with a
//! fresh instance per call (`isolation = "event"`); then a warm call of
//! the Python and JavaScript order-status, when they are built, which is
//! what sets those languages' respond rows apart.
//!
//! Needs `plugins/dist/order-status.wasm` (`plugins/build`).

#![forbid(unsafe_code)]

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use wirehook::config::{Isolation, PluginsConfig, ResolvedPlugin};
use wirehook::event::{Event, Source};
use wirehook::providers;
use wirehook::runtime::{PluginEvent, Runtime};

const BODY: &str = r#"{"contact": {"uuid": "c1", "name": "Ben Haggerty", "urn": "tel:+12065551212"},
  "flow": {"uuid": "f1", "name": "Order Status Checker"},
  "results": {"order": {"value": "CU001", "category": "Has Text"}},
  "input": {"text": "CU001"}}"#;

fn flow_call() -> Event {
    let decode = providers::decoder("goflow").expect("wirehook knows goflow");
    let decoded = decode(BODY.as_bytes()).expect("the body decodes").remove(0);
    Event {
        source: Source {
            provider: "goflow".into(),
            route: "orders".into(),
            delivery_id: "d1".into(),
            received_at_ms: 0,
            attempt: 1,
        },
        kind: decoded.kind,
        payload: decoded.payload,
        raw_json: decoded.raw_json,
    }
}

fn plugin_call(c: &mut Criterion) {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    let wasm = dist.join("order-status.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run plugins/build first",
        wasm.display()
    );
    let plugins = PluginsConfig::default();
    let runtime = Runtime::new(None, None, &plugins).expect("the runtime starts");
    let async_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Converted once, as a route converts it once for all its plugins.
    let event = PluginEvent::from(flow_call());
    let mut group = c.benchmark_group("plugin call");
    let others = [
        ("warm pooled instance, Python", "order-status-py"),
        ("warm pooled instance, JavaScript", "order-status-js"),
    ]
    .into_iter()
    .map(|(name, plugin)| (name, dist.join(format!("{plugin}.wasm")), Isolation::Pooled))
    .filter(|(_, wasm, _)| wasm.is_file());
    let calls = [
        ("warm pooled instance", wasm.clone(), Isolation::Pooled),
        ("fresh instance per event", wasm, Isolation::Event),
    ]
    .into_iter()
    .chain(others);
    for (name, wasm, isolation) in calls {
        let config = ResolvedPlugin {
            isolation,
            ..ResolvedPlugin::default()
        };
        let bytes = std::fs::read(&wasm).expect("reading order-status");
        let plugin = runtime
            .load("order-status", &wasm, &bytes, &config, &plugins)
            .expect("order-status loads");
        // The reply is checked once, so the benchmark measures a call
        // that works.
        let reply = async_runtime
            .block_on(plugin.handle(&event))
            .expect("the call succeeds")
            .expect("order-status replies");
        assert_eq!(reply.json, r#"{"number":"CU001","status":"Shipped"}"#);
        group.bench_function(name, |b| {
            b.iter(|| async_runtime.block_on(plugin.handle(&event)))
        });
    }
    group.finish();
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
