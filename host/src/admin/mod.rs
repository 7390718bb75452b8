//! The admin listener (`[admin] listen`): a JSON API over the delivery
//! log ([`api`]) and the delivery console in the browser ([`console`]),
//! both behind the admin token ([`auth`]). It is a listener of its own,
//! never the providers', under the same door limits as theirs.
//!
//! The console is server-rendered HTML with one small static script for
//! live updates (server-sent events, [`live`]), all embedded in the binary: no CDN, no
//! build step. Every response carries a strict Content-Security-Policy
//! (no inline script, no inline style), and every stored value is
//! escaped where it is written ([`html`]).

// Handlers' helpers fail with the HTTP response itself, built once per
// request: boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::ResolvedAdmin;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::routes::RouteTable;
use crate::server::{Plain, serve_apart};
use crate::store::{Store, StoreError};
use crate::tls::{Certificate, TlsHandshake};

mod api;
mod auth;
mod console;
mod html;
mod live;
mod login;
pub mod ops;
mod stats;

/// Every response's Content-Security-Policy: scripts and styles from the
/// listener's own files only, nothing inline, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the admin handlers share.
pub struct Admin {
    store: Arc<dyn Store>,
    routes: Arc<ArcSwap<RouteTable>>,
    metrics: Arc<Metrics>,
    reloader: Arc<Reloader>,
    auth: auth::Auth,
    /// The session cookie is `Secure` when the daemon serves TLS, as the
    /// admin listener then does too.
    secure_cookie: bool,
    session_secs: u64,
    /// True once the listener stops: the live streams end, so that the
    /// graceful shutdown does not wait for them.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Admin {
    /// `None` when `[admin] listen` is unset.
    pub fn new(
        config: &ResolvedAdmin,
        store: Arc<dyn Store>,
        routes: Arc<ArcSwap<RouteTable>>,
        metrics: Arc<Metrics>,
        reloader: Arc<Reloader>,
    ) -> Option<Arc<Self>> {
        config.listen?;
        let token = config.token.clone()?;
        let secure_cookie = routes.load().tls.is_some();
        Some(Arc::new(Self {
            store,
            routes,
            metrics,
            reloader,
            auth: auth::Auth::new(
                token,
                config.max_failures_per_minute,
                config.session_minutes,
            ),
            secure_cookie,
            session_secs: config.session_minutes.saturating_mul(60),
            closing: tokio::sync::watch::Sender::new(false),
        }))
    }
}

/// Binds `[admin] listen`, when set.
pub async fn bind(config: &ResolvedAdmin) -> anyhow::Result<Option<TcpListener>> {
    use anyhow::Context as _;
    match config.listen {
        Some(addr) => Ok(Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding admin.listen {addr}"))?,
        )),
        None => Ok(None),
    }
}

/// Serves the admin API and console on `listener` until `shutdown`
/// resolves, under the `[server]` door limits, with at most
/// `max_connections` connections; over TLS with the webhook listener's
/// certificate when it has one.
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    certificate: Option<Certificate>,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let routes = admin.routes.clone();
    let closing = admin.closing.clone();
    let shutdown = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    let router = router(admin);
    match certificate {
        Some(certificate) => {
            let tls = TlsHandshake::new(certificate);
            serve_apart(listener, tls, router, routes, max_connections, shutdown).await
        }
        None => serve_apart(listener, Plain, router, routes, max_connections, shutdown).await,
    }
}

fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/api/events", get(api::events))
        .route("/api/events/stream", get(live::stream))
        .route("/api/events/{id}", get(api::event))
        .route("/api/events/{id}/replay", post(api::replay_one))
        .route("/api/replay", post(api::replay))
        .route("/api/dead-letters/purge", post(api::purge))
        .route("/api/routes", get(api::routes))
        .route("/api/stats", get(api::stats))
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/", get(console::events))
        .route("/events/{id}", get(console::event))
        .route("/events/{id}/replay", post(console::replay_one))
        .route(
            "/dead-letters",
            get(console::dead_letters).post(console::dead_letters_act),
        )
        .route("/routes", get(console::routes))
        .route("/charts", get(console::charts))
        .route("/static/console.js", get(console::script))
        .route("/static/console.css", get(console::style))
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(admin)
}

/// Headers every admin response carries.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A short JSON error.
fn api_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A store failure: logged, and a 503 that names no internals.
fn store_failed(e: &StoreError) -> Response {
    tracing::error!("admin: store: {e}");
    api_error(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
}

/// The client's address, as the listener saw it.
fn peer(request_peer: Option<&axum::extract::ConnectInfo<SocketAddr>>) -> std::net::IpAddr {
    request_peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| {
        c.0.ip().to_canonical()
    })
}

/// Reads at most `limit` bytes of a request body.
async fn body_bytes(body: Body, limit: usize) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| api_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large or cut"))
}

/// What a refused request gets: JSON for the API, the login page for
/// the console.
fn denied(denied: auth::Denied, api: bool) -> Response {
    match denied {
        auth::Denied::Limited(wait) => {
            let mut response = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong tokens from this address; wait a minute",
            );
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(value) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        auth::Denied::Unauthorized if api => {
            let mut response = api_error(StatusCode::UNAUTHORIZED, "a valid admin token is needed");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        auth::Denied::Unauthorized => axum::response::Redirect::to("/login").into_response(),
    }
}

/// The caller of `request`, or the response refusing it.
fn authorize<B>(admin: &Admin, request: &Request<B>, api: bool) -> Result<auth::Caller, Response> {
    let client = peer(request.extensions().get());
    admin
        .auth
        .caller(client, request.headers(), &admin.metrics)
        .map_err(|d| denied(d, api))
}
