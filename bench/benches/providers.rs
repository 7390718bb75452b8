//! What a provider costs one request before any plugin runs: verifying
//! and decoding the load generator's own goflow, Truora and generic HMAC
//! requests (the bodies rows 2, 3 and 10 of `bench/run` send), through
//! the same `Provider::verify` and `Provider::decode` the server calls;
//! and the HMAC request through `hmac-provider`, the same scheme as a
//! provider plugin (row 10's other line), when `plugins/build --bench`
//! has built it.

#![forbid(unsafe_code)]

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use criterion::{Criterion, criterion_group, criterion_main};
use wirehook::config::provider::{ProviderId, ProviderOptions};
use wirehook::config::{Isolation, PluginsConfig};
use wirehook::providers::{self, ProviderConfig, Request};
use wirehook::runtime::Limits;
use wirehook::runtime::provider::{CompiledProvider, Keys, ProviderPlugin, ProviderSetup};
use wirehook::secret::Secret;
use wirehook_bench::requests::{Kind, Requests};
use wirehook_bench::targets::{GOFLOW_TOKEN, HMAC_SECRET, TRUORA_SECRET};

fn verify_and_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("provider");
    for (kind, id, secret) in [
        (Kind::Goflow, "goflow", GOFLOW_TOKEN),
        (Kind::Truora, "truora", TRUORA_SECRET),
        (Kind::Hmac, "hmac", HMAC_SECRET),
    ] {
        let signed = Requests::new(kind, secret, vec!["/hooks/orders".into()])
            .and_then(|requests| requests.next(0, 0, SystemTime::now()))
            .expect("the load generator signs a request");
        let mut headers = HeaderMap::new();
        for (name, value) in &signed.headers {
            headers.insert(
                HeaderName::try_from(name.as_str()).expect("a header name"),
                HeaderValue::try_from(value.as_str()).expect("a header value"),
            );
        }
        let options = ProviderOptions::bare(id.parse::<ProviderId>().expect("a known provider"));
        let provider = providers::build(&ProviderConfig {
            options: &options,
            secret: Some(Secret::new(secret.as_bytes())),
            slow_checks: providers::SlowChecks::default(),
        })
        .expect("the provider builds from a bare route");
        let decode = providers::decoder(id).expect("wirehook knows the provider");
        let request = Request {
            method: &Method::POST,
            headers: &headers,
            query: "",
            body: &signed.body,
        };
        group.bench_function(format!("{id}: verify and decode"), |b| {
            b.iter(|| {
                let verified = provider.verify(&request).expect("the request verifies");
                decode(&verified.document).expect("the request decodes")
            })
        });
        if kind == Kind::Hmac {
            plugin(&mut group, &request);
        }
    }
    group.finish();
}

/// `request` through the `hmac-provider` plugin, as a route with
/// `provider = "plugin:hmac-provider"` calls it: a fresh instance a call.
fn plugin(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    request: &Request<'_>,
) {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-plugins/hmac-provider.wasm");
    let Ok(bytes) = std::fs::read(&wasm) else {
        eprintln!(
            "{} is not built (plugins/build --bench): skipped",
            wasm.display()
        );
        return;
    };
    let engine = wirehook::runtime::compiling_engine().expect("the engine");
    let compiled = CompiledProvider::compile(&engine, "hmac-provider", &wasm, &bytes)
        .expect("hmac-provider is a provider plugin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    for (isolation, label) in [
        (Isolation::Event, "plugin:hmac-provider: verify and decode"),
        (
            Isolation::Pooled,
            "plugin:hmac-provider, pooled: verify and decode",
        ),
    ] {
        let setup = ProviderSetup {
            route: "orders".to_owned(),
            keys: Keys {
                secret: Some(Secret::new(HMAC_SECRET.as_bytes())),
                named: Default::default(),
            },
            public_url: None,
            limits: Limits::from(&PluginsConfig::default()),
            timeout: std::time::Duration::from_secs(10),
            isolation,
        };
        let plugin = ProviderPlugin::bind(compiled.clone(), setup);
        group.bench_function(label, |b| {
            b.iter(|| {
                runtime
                    .block_on(plugin.verify(request, "/hooks/orders"))
                    .expect("the plugin answers")
                    .expect("the request verifies")
            })
        });
    }
}

criterion_group!(benches, verify_and_decode);
criterion_main!(benches);
