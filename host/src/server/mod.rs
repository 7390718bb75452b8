//! The HTTP front: one handler for every route. It finds the route by
//! path, checks address, method and size, lets the provider verify and
//! decode (or answer its GET handshake), and hands the events on. Every refusal is a short JSON error
//! and one log line naming route, reason and remote address, rate-limited
//! (see [`log_limit`]). `/healthz`
//! and `/readyz` are answered here too, for load balancers and probes.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sha2::{Digest, Sha256};

mod body;
mod door;
mod forwarded;
mod listener;
mod log_limit;

use crate::config::Mode;
use crate::dispatch::{AcceptError, Dispatcher};
use crate::event::{Decoded, Event, Source};
use crate::metrics::Metrics;
use crate::providers::{self, Rejection, Verified};
use crate::routes::{Route, RouteTable};
use crate::runtime::provider::ProviderFailure;
use crate::store::{Admission, StoreError};
use door::Door;
use forwarded::{Client, client_ip, is_trusted};
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::telemetry::{self, TARGET};
pub use listener::{Handshake, Plain, serve_apart};
use tokio::net::TcpListener;

/// What a provider is told to wait before retrying when the queue is full.
const RETRY_AFTER_SECS: &str = "5";

/// What a provider is told to wait when every slow check is taken: they
/// last milliseconds.
const BUSY_RETRY_AFTER_SECS: &str = "1";

/// What every request handler shares.
pub struct App {
    /// Swapped whole by a reload; a request keeps the table it started with.
    pub routes: Arc<ArcSwap<RouteTable>>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish. `handshake` is [`Plain`] or TLS.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let wanted = app.routes.load().server.max_connections;
    let door = Arc::new(Door::new(
        app.routes.clone(),
        app.metrics.clone(),
        door::fit_open_file_limit(wanted),
    ));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(handle)
        .with_state(app);
    listener::serve(listener, handshake, router, door, shutdown).await
}

/// The process is up and answering.
async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Ready for webhooks: routes and plugins are loaded (they are before the
/// listener opens) and the store answers.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.dispatcher.check_store().await {
        Ok(()) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            tracing::warn!("not ready: {e}");
            error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let table = app.routes.load_full();
    let route = table.route(request.uri().path());
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %request.method(),
        http.route = Empty,
        http.response.status_code = Empty,
        client.address = Empty,
        network.peer.address = %peer.ip(),
        wirehook.route = Empty,
        wirehook.provider = Empty,
        wirehook.refusal = Empty,
    );
    if !span.is_disabled() {
        trace_request(&span, &table, route.map(AsRef::as_ref), peer, &request);
    }
    let response = match route {
        Some(route) => {
            answer(&app, &table, route, peer, request)
                .instrument(span.clone())
                .await
        }
        None => {
            if log_limit::no_route() {
                let path = log_limit::path(request.uri().path());
                let remote = client_ip(peer.ip(), request.headers(), &table.server.trusted_proxies);
                tracing::info!(%path, %remote, "no route for path");
            }
            error(StatusCode::NOT_FOUND, "no route for this path")
        }
    };
    app.metrics
        .request(route.map(|route| &route.name), response.status());
    if !span.is_disabled() {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() || status.is_client_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
    response
}

/// Gives the request span its route and client, and joins a trace begun
/// upstream when the peer is a trusted proxy (anyone else's
/// `traceparent` is ignored: a new trace starts).
fn trace_request(
    span: &tracing::Span,
    table: &RouteTable,
    route: Option<&Route>,
    peer: SocketAddr,
    request: &Request,
) {
    let trusted = &table.server.trusted_proxies;
    let remote = client_ip(peer.ip(), request.headers(), trusted);
    span.record("client.address", tracing::field::display(remote));
    // HTTP semantic conventions name a server span `{method} {route}`,
    // or the method alone when no route matched.
    match route {
        Some(route) => span.record(
            "otel.name",
            format!("{} {}", request.method(), route.path).as_str(),
        ),
        None => span.record("otel.name", request.method().as_str()),
    };
    if let Some(route) = route {
        span.record("http.route", route.path.as_str());
        span.record("wirehook.route", &*route.name);
        span.record("wirehook.provider", &*route.provider_name);
    }
    if is_trusted(peer.ip(), trusted)
        && let Some(parent) = request.headers().get("traceparent")
        && let Ok(parent) = parent.to_str()
    {
        let state = request
            .headers()
            .get("tracestate")
            .and_then(|state| state.to_str().ok());
        telemetry::set_parent(span, parent, state);
    }
}

async fn answer(
    app: &App,
    table: &RouteTable,
    route: &Route,
    peer: SocketAddr,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let remote = client_ip(peer.ip(), &parts.headers, &table.server.trusted_proxies);
    let refuse = |status: StatusCode, reason: &str| {
        tracing::Span::current().record("wirehook.refusal", reason);
        if log_limit::refusal(&route.name, status) {
            tracing::warn!(route = %route.name, %remote, status = status.as_u16(), reason, "request refused");
        }
        error(status, reason)
    };
    let unverified = |rejection: &Rejection| {
        app.metrics
            .verification_failure(&route.name, failure_reason(rejection));
        let mut response = refuse(status_of(rejection), &rejection.to_string());
        if matches!(rejection, Rejection::Busy(_)) {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(BUSY_RETRY_AFTER_SECS),
            );
        }
        response
    };
    // The address first: a refused address learns nothing else.
    if !route.allow_ips.is_empty() && !remote.is_in(&route.allow_ips) {
        app.metrics
            .verification_failure(&route.name, "address_not_allowed");
        return refuse(StatusCode::FORBIDDEN, "address not allowed");
    }
    let failed = |failure: &ProviderFailure| {
        app.metrics
            .verification_failure(&route.name, failure.metric_reason());
        let rejection = failure.rejection();
        refuse(status_of(&rejection), &rejection.to_string())
    };
    let query = parts.uri.query().unwrap_or_default();
    if parts.method == Method::GET
        && let Some(plugin) = &route.provider_plugin
    {
        let request = providers::Request {
            method: &parts.method,
            headers: &parts.headers,
            query,
            body: &[],
        };
        match plugin.handshake(&request, parts.uri.path()).await {
            Ok(Ok(Some((content_type, answer)))) => {
                tracing::info!(route = %route.name, %remote, "handshake answered");
                let content_type = HeaderValue::from_str(&content_type)
                    .unwrap_or(HeaderValue::from_static("text/plain; charset=utf-8"));
                return ([(header::CONTENT_TYPE, content_type)], answer).into_response();
            }
            // No handshake: a GET is refused below like any other method.
            Ok(Ok(None)) => {}
            Ok(Err(rejection)) => return unverified(&rejection),
            Err(failure) => return failed(&failure),
        }
    }
    if parts.method == Method::GET
        && let Some(handshake) = route.provider.handshake()
    {
        let request = providers::Request {
            method: &parts.method,
            headers: &parts.headers,
            query,
            body: &[],
        };
        match handshake.answer(&request) {
            Ok(answer) => {
                tracing::info!(route = %route.name, %remote, "handshake answered");
                return (
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    answer,
                )
                    .into_response();
            }
            Err(rejection) => return unverified(&rejection),
        }
    }
    if parts.method != Method::POST {
        let allow = if route.provider.handshake().is_some() {
            "GET, POST"
        } else {
            "POST"
        };
        let mut response = refuse(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return response;
    }
    let body = match read_body(body, table.server.max_body_bytes).await {
        Ok(body) => body,
        Err(status) => return refuse(status, "body too large or unreadable"),
    };
    let request = providers::Request {
        method: &parts.method,
        headers: &parts.headers,
        query,
        body: &body,
    };
    let (verified, decoded) = if let Some(plugin) = &route.provider_plugin {
        let verdict = plugin
            .verify(&request, parts.uri.path())
            .instrument(tracing::info_span!(target: TARGET, "verify"))
            .await;
        match verdict {
            Ok(Ok(decoded)) => (Verified::body(&request), decoded),
            Ok(Err(rejection)) => return unverified(&rejection),
            Err(failure) => return failed(&failure),
        }
    } else {
        let verified = tracing::info_span!(target: TARGET, "verify", otel.status_code = Empty)
            .in_scope(|| {
                let verified = route.provider.verify(&request);
                if verified.is_err() {
                    tracing::Span::current().record("otel.status_code", "ERROR");
                }
                verified
            });
        let verified = match verified {
            Ok(verified) => verified,
            Err(rejection) => return unverified(&rejection),
        };
        if let Some(answer) = verified.answer {
            tracing::info!(route = %route.name, %remote, "endpoint check answered");
            return ([(header::CONTENT_TYPE, "application/json")], answer).into_response();
        }
        let decoded = tracing::info_span!(target: TARGET, "decode", otel.status_code = Empty)
            .in_scope(|| {
                let decoded = (route.decode)(&verified.document);
                if decoded.is_err() {
                    tracing::Span::current().record("otel.status_code", "ERROR");
                }
                decoded
            });
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(rejection) => return unverified(&rejection),
        };
        (verified, decoded)
    };
    let events = to_events(route, &verified, decoded);
    match route.mode {
        Mode::Respond => respond(&app.dispatcher, route, events).await,
        Mode::Queue => enqueue(&app.dispatcher, route, events, remote).await,
    }
}

/// Acknowledges once the events are committed to the store.
async fn enqueue(
    dispatcher: &Dispatcher,
    route: &Route,
    events: Vec<Event>,
    remote: Client,
) -> Response {
    let ids: Vec<_> = events
        .iter()
        .map(|e| e.source.delivery_id.clone())
        .collect();
    let span = tracing::info_span!(
        target: TARGET,
        "admission",
        wirehook.events = events.len(),
        wirehook.accepted = Empty,
        wirehook.duplicates = Empty,
        otel.status_code = Empty,
    );
    let accepted = dispatcher.accept(events).instrument(span.clone()).await;
    if !span.is_disabled() {
        match &accepted {
            Ok(admissions) => {
                let queued = admissions
                    .iter()
                    .filter(|a| matches!(a, Admission::Queued(_)))
                    .count();
                span.record("wirehook.accepted", queued);
                span.record("wirehook.duplicates", admissions.len() - queued);
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
    }
    match accepted {
        Ok(admissions) => {
            let (mut accepted, mut duplicates) = (Vec::new(), Vec::new());
            for (id, admission) in ids.into_iter().zip(admissions) {
                match admission {
                    Admission::Queued(_) => accepted.push(id),
                    Admission::Duplicate => duplicates.push(id),
                }
            }
            // At debug, like a respond route's plugin call: the store's
            // delivery log already holds every event, and a line per
            // request at info cost a queue route an eighth of its CPU
            // (and would be rate-limited by journald under load anyway).
            tracing::debug!(route = %route.name, %remote, ?accepted, ?duplicates, "accepted");
            let body = if duplicates.is_empty() {
                json!({ "accepted": accepted })
            } else {
                json!({ "accepted": accepted, "duplicates": duplicates })
            };
            (StatusCode::ACCEPTED, axum::Json(body)).into_response()
        }
        Err(AcceptError::Overloaded { depth }) => {
            tracing::warn!(route = %route.name, %remote, depth, "queue full: asking the provider to retry later");
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "queue full, retry later");
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            response
        }
        Err(AcceptError::Store(e @ StoreError::Unavailable(_))) => {
            tracing::warn!(route = %route.name, %remote, "cannot store events: {e}");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable, retry later",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
            response
        }
        Err(AcceptError::Store(e)) => {
            tracing::error!(route = %route.name, %remote, "cannot store events: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "events could not be stored; retry",
            )
        }
    }
}

/// Runs the plugins inline; the last reply is the response.
async fn respond(dispatcher: &Dispatcher, route: &Route, events: Vec<Event>) -> Response {
    let mut answer = None;
    for event in events {
        match dispatcher.respond(route, event).await {
            Ok(Some(reply)) => answer = Some(reply),
            Ok(None) => {}
            // The whole failure (a trap's backtrace) is in the log.
            Err(failure) => return error(StatusCode::BAD_GATEWAY, &failure.error.summary()),
        }
    }
    let Some(reply) = answer else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let status = match StatusCode::from_u16(reply.status) {
        Ok(status) if (200..600).contains(&reply.status) => status,
        _ => {
            tracing::warn!(route = %route.name, status = reply.status, "plugin replied with an invalid status");
            return error(
                StatusCode::BAD_GATEWAY,
                "plugin replied with an invalid status",
            );
        }
    };
    if serde_json::from_str::<serde::de::IgnoredAny>(&reply.json).is_err() {
        tracing::warn!(route = %route.name, "plugin replied with invalid JSON");
        return error(StatusCode::BAD_GATEWAY, "plugin replied with invalid JSON");
    }
    let mut response = Response::new(Body::from(reply.json));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The `reason` label of a verification failure.
fn failure_reason(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::Unauthorized(_) => "unauthorized",
        Rejection::Forbidden(_) => "forbidden",
        Rejection::BadRequest(_) => "bad_request",
        Rejection::UnsupportedMediaType(_) => "unsupported_media_type",
        Rejection::TooLarge(_) => "too_large",
        Rejection::Busy(_) => "busy",
    }
}

fn status_of(rejection: &Rejection) -> StatusCode {
    match rejection {
        Rejection::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
        Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
        Rejection::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Rejection::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Gives each decoded event its source and a stable delivery id: the
/// event's own id from the provider, else the delivery's (a signed
/// header), else a hash of route and proven document. The document, not
/// the raw body, so that a body re-spaced on the way (OneRoute proves the
/// re-serialised form) keeps its id. A kind the provider sent outside
/// the document names its one event.
fn to_events(route: &Route, verified: &Verified<'_>, decoded: Vec<Decoded>) -> Vec<Event> {
    let received_at_ms = crate::clock::now_ms();
    let several = decoded.len() > 1;
    // Once per request, not per event: a body of many events is hashed once.
    let hash = std::cell::OnceCell::new();
    let document_hash = || {
        hash.get_or_init(|| {
            let mut hasher = Sha256::new();
            hasher.update(route.name.as_bytes());
            hasher.update([0]);
            hasher.update(&verified.document);
            hex::encode(&hasher.finalize()[..16])
        })
        .clone()
    };
    decoded
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let delivery_id = match (d.provider_id, &verified.delivery_id) {
                (Some(id), _) => id,
                (None, Some(id)) if several => format!("{id}-{i}"),
                (None, Some(id)) => id.clone(),
                (None, None) if several => format!("{}-{i}", document_hash()),
                (None, None) => document_hash(),
            };
            let kind = match &verified.kind {
                Some(kind) if !several => kind.clone(),
                _ => d.kind,
            };
            Event {
                source: Source {
                    provider: route.provider_name.to_string(),
                    route: route.name.to_string(),
                    delivery_id,
                    received_at_ms,
                    attempt: 1,
                },
                kind,
                payload: d.payload,
                raw_json: d.raw_json,
            }
        })
        .collect()
}

/// Reads the whole body, refusing more than `limit` bytes; a body the
/// listener cut is answered as it says.
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, StatusCode> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut causes =
            std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            });
        causes
            .find_map(|e| {
                if let Some(cut) = e.downcast_ref::<body::BodyCut>() {
                    Some(cut.status())
                } else if e.is::<http_body_util::LengthLimitError>() {
                    Some(StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    None
                }
            })
            .unwrap_or(StatusCode::BAD_REQUEST)
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Activity, Admin, Claimed, DeliveryLog, Filter, Intake, KvStore, Queue, Record, StoreError,
        UnixMs,
    };
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A store that answers with nothing until it is closed, then fails.
    #[derive(Default)]
    struct Closable(AtomicBool);

    impl Closable {
        fn answer<T: Default>(&self) -> Result<T, StoreError> {
            if self.0.load(Ordering::Relaxed) {
                Err(StoreError::Closed)
            } else {
                Ok(T::default())
            }
        }
    }

    #[async_trait::async_trait]
    impl Queue for Closable {
        async fn enqueue_traced(
            &self,
            _: Intake,
            _: Vec<Event>,
            _: Option<String>,
            _: UnixMs,
            _: UnixMs,
        ) -> Result<Vec<Admission>, StoreError> {
            self.answer()
        }
        async fn claim(
            &self,
            _: UnixMs,
            _: usize,
            _: Option<Vec<String>>,
        ) -> Result<Vec<Claimed>, StoreError> {
            self.answer()
        }
        async fn finish_attempts(
            &self,
            _: Vec<crate::store::Finished>,
            _: UnixMs,
        ) -> Result<(), StoreError> {
            self.answer()
        }
        async fn next_due(&self, _: Option<Vec<String>>) -> Result<Option<UnixMs>, StoreError> {
            self.answer()
        }
        async fn waiting(&self, _: Vec<String>) -> Result<Vec<(String, u64)>, StoreError> {
            self.answer()
        }
        async fn depth(&self) -> Result<u64, StoreError> {
            self.answer()
        }
        async fn recover(&self, _: UnixMs) -> Result<u64, StoreError> {
            self.answer()
        }
    }

    #[async_trait::async_trait]
    impl DeliveryLog for Closable {
        async fn log_response(
            &self,
            _: crate::store::Response,
            _: UnixMs,
        ) -> Result<(), StoreError> {
            self.answer()
        }
        async fn list(&self, _: Filter) -> Result<Vec<Record>, StoreError> {
            self.answer()
        }
        async fn get(&self, _: i64) -> Result<Option<(Record, Event)>, StoreError> {
            self.answer()
        }
        async fn attempts(&self, _: i64) -> Result<Vec<crate::store::Attempt>, StoreError> {
            self.answer()
        }
    }

    #[async_trait::async_trait]
    impl Admin for Closable {
        async fn replay(&self, _: Vec<i64>, _: UnixMs) -> Result<Vec<i64>, StoreError> {
            self.answer()
        }
        async fn purge_dead(&self, _: Vec<i64>) -> Result<u64, StoreError> {
            self.answer()
        }
        async fn activity(&self, _: UnixMs) -> Result<Vec<Activity>, StoreError> {
            self.answer()
        }
        async fn prune(&self, _: UnixMs, _: UnixMs) -> Result<u64, StoreError> {
            self.answer()
        }
    }

    #[async_trait::async_trait]
    impl KvStore for Closable {
        async fn kv_get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.answer()
        }
        async fn kv_set(&self, _: &str, _: &str, _: Vec<u8>, _: u64) -> Result<bool, StoreError> {
            self.answer()
        }
        async fn kv_delete(&self, _: &str, _: &str) -> Result<(), StoreError> {
            self.answer()
        }
        async fn kv_list(&self, _: &str, _: &str, _: usize) -> Result<Vec<String>, StoreError> {
            self.answer()
        }
    }

    #[tokio::test]
    async fn readyz_answers_503_once_the_store_fails() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("wirehook.toml");
        std::fs::write(&config_path, format!("[plugins]\ndir = {:?}\n", dir.path())).unwrap();
        let config = crate::config::Config::load(&config_path)
            .unwrap()
            .resolve()
            .unwrap();
        let runtime = crate::runtime::Runtime::new(None, None, &config.plugins).unwrap();
        let table = RouteTable::build(&config, &runtime, None).unwrap();
        let routes = Arc::new(ArcSwap::from_pointee(table));
        let store = Arc::new(Closable::default());
        let metrics = Arc::new(Metrics::new(Vec::new()));
        let dispatcher = Dispatcher::start(
            store.clone(),
            routes.clone(),
            config.delivery.clone(),
            metrics.clone(),
        )
        .await
        .unwrap();
        let app = Arc::new(App {
            routes,
            dispatcher: dispatcher.clone(),
            metrics,
        });
        assert_eq!(readyz(State(app.clone())).await.status(), StatusCode::OK);
        store.0.store(true, Ordering::Relaxed);
        assert_eq!(
            readyz(State(app.clone())).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // The process itself is still up.
        assert_eq!(healthz().await.status(), StatusCode::OK);
        dispatcher.shutdown().await;
    }
}
