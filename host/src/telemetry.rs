//! OpenTelemetry traces: the layer that turns wirehook's spans into OTLP
//! spans for a collector, and the W3C trace context carried in and out
//! (a trusted proxy's `traceparent`, a queued event's stored context, the
//! `traceparent` `fetch` sends). With `[telemetry] otlp_endpoint` unset no
//! layer is installed: every span callsite is then disabled once, when
//! first reached, and costs a load of its cached interest from then on.
//!
//! Spans carry names, routes, plugins, statuses and outcomes; never a
//! secret, a token, a header's value or a body.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryConfig;

/// The target every span of wirehook's is made under: the one the
/// exporting layer takes, and the one the log leaves out.
pub const TARGET: &str = "wirehook::trace";

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps the exporter running; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans still batched, within a few seconds.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!("telemetry: the last spans were not all exported: {e}");
        }
    }
}

/// The exporting layer for `config`, or `None` when nothing is exported.
pub fn layer<S>(
    config: &TelemetryConfig,
) -> anyhow::Result<Option<(impl Layer<S> + Send + Sync + use<S>, Telemetry)>>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    let client = Exports::start()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("telemetry.otlp_endpoint")?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("wirehook");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span() && meta.target() == TARGET
        }));
    Ok(Some((layer, Telemetry { provider })))
}

/// The OTLP exporter's HTTP client: the daemon's reqwest, on a runtime
/// of its own with one thread, as the batch processor exports from a
/// thread of its own outside any runtime.
#[derive(Debug)]
struct Exports {
    runtime: Arc<tokio::runtime::Runtime>,
    client: reqwest::Client,
}

impl Exports {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .context("starting the telemetry exporter's runtime")?;
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("building the telemetry exporter's HTTP client")?;
        Ok(Self {
            runtime: Arc::new(runtime),
            client,
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Exports {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        self.runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let mut answer = http::Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    headers.extend(response.headers().clone());
                }
                let body = response.bytes().await?;
                Ok(answer.body(body)?)
            })
            .await?
    }
}

/// The current span's W3C `traceparent` (and `tracestate`), to store with
/// a queued event or send with a request; empty when there is no
/// recorded span (telemetry off, or the trace not sampled).
pub fn current_context() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
    }
    carrier
}

/// The `traceparent` of the current span, if any.
pub fn current_traceparent() -> Option<String> {
    current_context().remove("traceparent")
}

/// Makes `span` a child of the context in `traceparent` (a trusted
/// proxy's header or an event's stored context); a malformed one is
/// ignored, and the span starts its own trace.
pub fn set_parent(span: &tracing::Span, traceparent: &str, tracestate: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    let mut carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_remote() {
        let _ = span.set_parent(context);
    }
}

/// The trace and span ids of the current span, for a log line.
pub fn current_ids() -> Option<(String, String)> {
    ids(&tracing::Span::current())
}

/// The trace and span ids of `span`, when it is recorded.
pub fn ids(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}
