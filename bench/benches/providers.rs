//! What a provider costs one request before any plugin runs: verifying
//! and decoding the load generator's own goflow and Truora requests (the
//! bodies rows 2 and 3 of `bench/run` send), through the same
//! `Provider::verify` and `Provider::decode` the server calls.

#![forbid(unsafe_code)]

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use criterion::{Criterion, criterion_group, criterion_main};
use wirehook::config::provider::{ProviderId, ProviderOptions};
use wirehook::providers::{self, ProviderConfig, Request};
use wirehook::secret::Secret;
use wirehook_bench::requests::{Kind, Requests};
use wirehook_bench::targets::{GOFLOW_TOKEN, TRUORA_SECRET};

fn verify_and_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("provider");
    for (kind, id, secret) in [
        (Kind::Goflow, "goflow", GOFLOW_TOKEN),
        (Kind::Truora, "truora", TRUORA_SECRET),
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
    }
    group.finish();
}

criterion_group!(benches, verify_and_decode);
criterion_main!(benches);
