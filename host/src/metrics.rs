//! Prometheus metrics, served as text on `server.metrics_listen` (a
//! listener of its own: the webhook port is public, and route names and
//! traffic figures are not for the providers to read).
//!
//! Every metric is named `wirehook_…`. Label values are the route's and
//! plugin's shared names (`Arc<str>`) and static strings, so counting a
//! request costs a map lookup under a read lock and no allocation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::routes::RouteTable;
use crate::runtime::{CallError, Plugin};

/// Connections the metrics listener keeps open at once: scrapers hold
/// one each. Beyond it the idlest is closed, as on the webhook listener;
/// they fit within the descriptors the webhook listener leaves spare.
const MAX_CONNECTIONS: usize = 16;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FailureLabels {
    route: Arc<str>,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    plugin: Arc<str>,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// An exemplar's labels: the traced plugin call that set it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TraceLabels {
    pub trace_id: String,
    pub span_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PluginLabels {
    plugin: Arc<str>,
}

/// Every metric wirehook keeps. Cheap to share: each field is a handle.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    verification_failures: Family<FailureLabels, Counter>,
    /// With an exemplar per bucket when traced: the latest call that
    /// fell in it, so that a slow bucket links to a trace of one.
    plugin_calls: Family<CallLabels, HistogramWithExemplars<TraceLabels>>,
    retries: Family<RouteLabels, Counter>,
    dead_letters: Family<RouteLabels, Counter>,
    plugin_waiting: Family<PluginLabels, Gauge>,
    waiting_for_route: Family<RouteLabels, Gauge>,
    /// Undelivered events. Signed: a worker may finish an event before
    /// the request that queued it has counted it, and the brief dip below
    /// zero must neither wrap nor be lost.
    pub queue_depth: Gauge,
    reloads: Counter,
    reload_failures: Counter,
    admin_auth_failures: Counter,
    /// Connections open on the webhook listener.
    pub connections_open: Gauge,
    connections_refused: Family<ReasonLabels, Counter>,
    /// Request body bytes held across requests (`max_body_bytes_in_flight`).
    pub body_bytes_in_flight: Gauge,
    store_bytes: Gauge,
    store_files: Vec<PathBuf>,
    /// The route label of requests for a path no route serves.
    unrouted: Arc<str>,
}

impl Metrics {
    /// `store_files` are summed for `wirehook_store_bytes` at each scrape.
    pub fn new(store_files: Vec<PathBuf>) -> Self {
        let mut registry = Registry::with_prefix("wirehook");
        let requests = Family::default();
        registry.register(
            "requests",
            "Webhook requests answered, by route and HTTP status",
            requests.clone(),
        );
        let verification_failures = Family::default();
        registry.register(
            "verification_failures",
            "Requests refused before reaching a plugin, by route and reason",
            verification_failures.clone(),
        );
        let plugin_calls =
            Family::<CallLabels, HistogramWithExemplars<TraceLabels>>::new_with_constructor(
                // 100 µs to about 6.5 s, ×4 per bucket.
                || HistogramWithExemplars::new(exponential_buckets(0.0001, 4.0, 9)),
            );
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin calls by plugin and outcome, and how long they took (the count is the calls)",
            plugin_calls.clone(),
        );
        let admin_auth_failures = Counter::default();
        registry.register(
            "admin_auth_failures",
            "Admin API and console requests refused for a wrong or missing token",
            admin_auth_failures.clone(),
        );
        let retries = Family::default();
        registry.register(
            "retries",
            "Queued events scheduled for another attempt, by route",
            retries.clone(),
        );
        let dead_letters = Family::default();
        registry.register(
            "dead_letters",
            "Queued events that failed for good, by route",
            dead_letters.clone(),
        );
        let plugin_waiting = Family::default();
        registry.register(
            "plugin_waiting_calls",
            "Calls waiting for an instance because every instance the plugin may have (pool_size, memory_budget_mb) is busy",
            plugin_waiting.clone(),
        );
        let waiting_for_route = Family::default();
        registry.register(
            "events_waiting_for_route",
            "Queued events whose route is not configured, by route (counted every minute)",
            waiting_for_route.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Events queued or being delivered",
            queue_depth.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "reloads",
            "Reloads of config and plugins that took effect",
            reloads.clone(),
        );
        let reload_failures = Counter::default();
        registry.register(
            "reload_failures",
            "Reloads refused; the running set was kept",
            reload_failures.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Connections open on the webhook listener",
            connections_open.clone(),
        );
        let connections_refused = Family::default();
        registry.register(
            "connections_refused",
            "Connections and requests refused or cut at the listener, by reason",
            connections_refused.clone(),
        );
        let body_bytes_in_flight = Gauge::default();
        registry.register(
            "body_bytes_in_flight",
            "Request body bytes held across requests being read or answered",
            body_bytes_in_flight.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Size of the embedded store on disk, write-ahead log included",
            store_bytes.clone(),
        );
        Self {
            registry,
            requests,
            verification_failures,
            plugin_calls,
            retries,
            dead_letters,
            plugin_waiting,
            waiting_for_route,
            queue_depth,
            reloads,
            reload_failures,
            admin_auth_failures,
            connections_open,
            connections_refused,
            body_bytes_in_flight,
            store_bytes,
            store_files,
            unrouted: Arc::from(""),
        }
    }

    /// A request was answered; `route` is `None` for an unknown path.
    pub fn request(&self, route: Option<&Arc<str>>, status: StatusCode) {
        let labels = RequestLabels {
            route: route.unwrap_or(&self.unrouted).clone(),
            status: status.as_u16(),
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// A request was refused before a plugin saw it.
    pub fn verification_failure(&self, route: &Arc<str>, reason: &'static str) {
        let labels = FailureLabels {
            route: route.clone(),
            reason,
        };
        self.verification_failures.get_or_create(&labels).inc();
    }

    /// A plugin call ended; `trace` is its span's, when traced.
    pub fn plugin_call(
        &self,
        plugin: &Arc<str>,
        outcome: Result<(), &CallError>,
        took: Duration,
        trace: Option<TraceLabels>,
    ) {
        let outcome = match outcome {
            Ok(()) => "ok",
            Err(CallError::Retry(_)) => "retry",
            Err(CallError::Drop(_)) => "drop",
            Err(CallError::Trap(_)) => "trap",
            Err(CallError::Timeout(_)) => "timeout",
            Err(CallError::Instantiate(_)) => "instantiate",
        };
        let labels = CallLabels {
            plugin: plugin.clone(),
            outcome,
        };
        self.plugin_calls
            .get_or_create(&labels)
            .observe(took.as_secs_f64(), trace, None);
    }

    // Retries and dead letters are rare enough to allocate their label.
    pub fn retry(&self, route: &str) {
        let labels = RouteLabels {
            route: Arc::from(route),
        };
        self.retries.get_or_create(&labels).inc();
    }

    pub fn dead_letter(&self, route: &str) {
        let labels = RouteLabels {
            route: Arc::from(route),
        };
        self.dead_letters.get_or_create(&labels).inc();
    }

    /// Sets the events waiting for each route that is not configured;
    /// routes no longer listed leave the family.
    pub fn waiting_for_route(&self, waiting: &[(String, u64)]) {
        self.waiting_for_route.clear();
        for (route, events) in waiting {
            let labels = RouteLabels {
                route: Arc::from(route.as_str()),
            };
            self.waiting_for_route
                .get_or_create(&labels)
                .set(i64::try_from(*events).unwrap_or(i64::MAX));
        }
    }

    /// The listener refused or cut a connection or request: `reason` is
    /// one of the listener's own (`max_connections`, `evicted`,
    /// `header_timeout`, `body_timeout`, `body_bytes_in_flight`).
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn reloaded(&self) {
        self.reloads.inc();
    }

    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    pub fn admin_auth_failed(&self) {
        self.admin_auth_failures.inc();
    }

    /// The exposition text, with the store's size and the plugins'
    /// waiting calls measured now.
    pub fn render(&self, plugins: &[Arc<Plugin>]) -> String {
        // Plugins unloaded since the last scrape leave the family.
        self.plugin_waiting.clear();
        for plugin in plugins {
            let labels = PluginLabels {
                plugin: plugin.name().clone(),
            };
            self.plugin_waiting
                .get_or_create(&labels)
                .set(i64::try_from(plugin.waiting()).unwrap_or(i64::MAX));
        }
        let bytes: u64 = self
            .store_files
            .iter()
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|meta| meta.len())
            .sum();
        self.store_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Binds `addr` for `/metrics`.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding server.metrics_listen {addr}"))
}

/// Serves `/metrics` on `listener` until `shutdown` resolves, under the
/// webhook listener's `[server]` timeouts, so that slow clients cannot
/// hold it; the plugins' figures are read from the route table current
/// at each scrape.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    routes: Arc<ArcSwap<RouteTable>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state((metrics, routes.clone()));
    crate::server::serve_apart(
        listener,
        crate::server::Plain,
        router,
        routes,
        MAX_CONNECTIONS,
        shutdown,
    )
    .await
}

async fn scrape(
    State((metrics, routes)): State<(Arc<Metrics>, Arc<ArcSwap<RouteTable>>)>,
) -> Response {
    let plugins: Vec<_> = routes.load().plugins().cloned().collect();
    let text = metrics.render(&plugins);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_depth_dips_below_zero_without_wrapping() {
        let metrics = Metrics::new(Vec::new());
        // The worker's decrement overtakes the request's increment.
        metrics.queue_depth.dec();
        assert_eq!(metrics.queue_depth.get(), -1);
        metrics.queue_depth.inc();
        assert_eq!(metrics.queue_depth.get(), 0);
    }

    #[test]
    fn labels_are_rendered_with_the_prefix() {
        let metrics = Metrics::new(Vec::new());
        let route: Arc<str> = Arc::from("orders");
        metrics.request(Some(&route), StatusCode::OK);
        metrics.request(None, StatusCode::NOT_FOUND);
        let text = metrics.render(&[]);
        assert!(
            text.contains(r#"wirehook_requests_total{route="orders",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wirehook_requests_total{route="",status="404"} 1"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
