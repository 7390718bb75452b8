//! The webhook listener: our own accept loop and hyper's HTTP/1.1
//! connections, each under the door's limits (header timeout, body pace,
//! connection and body byte caps). Plain TCP and TLS share it; the TLS
//! handshake runs in the connection's own task, under the header timeout.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use super::body::{GuardedBody, Outcome};
use super::door::{Admitted, Connection, Door, Refusal};
use crate::metrics::Metrics;
use crate::routes::RouteTable;

/// How long `accept` rests after failing (out of file descriptors and
/// the like), doubling while it keeps failing, so that it never spins.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// How long the accept loop waits for a connection it evicted to close
/// (a task switch, unless the runtime is starved).
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The largest request head, start line included (431 over it).
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// A connection's read buffer: what one connection can make the daemon
/// hold besides its body.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Turns an accepted TCP stream into the stream HTTP is spoken on.
pub trait Handshake: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Called in the accept loop; the future runs in the connection's task.
    fn start(
        &mut self,
        tcp: TcpStream,
    ) -> impl Future<Output = io::Result<Self::Io>> + Send + 'static;
}

/// Plain HTTP: the TCP stream as it is.
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;

    fn start(
        &mut self,
        tcp: TcpStream,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send + 'static {
        std::future::ready(Ok(tcp))
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets requests in flight finish.
pub async fn serve<H: Handshake>(
    listener: TcpListener,
    mut handshake: H,
    router: Router,
    door: Arc<Door>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = ACCEPT_BACKOFF.0;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF.0;
                accepted
            }
            // The client gave up before we took it: nothing to rest for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                door.accept_failed(&e);
                // Out of descriptors: the longest-idle connection gives
                // one back for the waiting client.
                let rest = async {
                    if let Some(closing) = door.evict_idlest() {
                        let _ = tokio::time::timeout(backoff, closing.wait()).await;
                    } else {
                        tokio::time::sleep(backoff).await;
                    }
                };
                tokio::select! {
                    () = &mut shutdown => break,
                    () = rest => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let (admitted, evicted) = door.admit();
        match admitted {
            Some(admitted) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(connection(
                    handshake.start(tcp),
                    peer,
                    router.clone(),
                    door.clone(),
                    admitted,
                    graceful.watcher(),
                ));
            }
            // Over the cap with every connection busy: closed at once.
            None => drop(tcp),
        }
        // The descriptors of the connections closed to make room are
        // given back before the next is taken.
        for closing in evicted {
            let _ = tokio::time::timeout(EVICTION_WAIT, closing.wait()).await;
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves `router` on a listener besides the webhook one (`/metrics`,
/// the admin API) under the same limits, read from `routes`, through a
/// door of its own:
/// at most `max_connections` connections, counted apart from the webhook
/// listener's (its figures are not exported, so that the webhook
/// listener's gauge and refusal counts stay its own).
pub async fn serve_apart<H: Handshake>(
    listener: TcpListener,
    handshake: H,
    router: Router,
    routes: Arc<ArcSwap<RouteTable>>,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let uncounted = Arc::new(Metrics::new(Vec::new()));
    let door = Arc::new(Door::new(routes, uncounted, max_connections));
    serve(listener, handshake, router, door, shutdown).await
}

/// One connection, its place given back once its socket is closed.
async fn connection<Io>(
    handshake: impl Future<Output = io::Result<Io>>,
    peer: SocketAddr,
    router: Router,
    door: Arc<Door>,
    admitted: Admitted,
    watcher: Watcher,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    exchange(
        handshake,
        peer,
        router,
        &door,
        &admitted.connection,
        watcher,
    )
    .await;
    drop(admitted);
}

/// The handshake, then requests, until the client closes, a limit cuts
/// the connection or the door closes it to make room.
async fn exchange<Io>(
    handshake: impl Future<Output = io::Result<Io>>,
    peer: SocketAddr,
    router: Router,
    door: &Arc<Door>,
    connection: &Arc<Connection>,
    watcher: Watcher,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = door.limits();
    let io = tokio::select! {
        () = connection.evicted() => return,
        io = tokio::time::timeout(limits.header_timeout, handshake) => match io {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "handshake failed: {e}");
                return;
            }
            Err(_) => {
                door.refused(Refusal::HeaderTimeout);
                return;
            }
        },
    };
    let service = {
        let door = door.clone();
        let connection = connection.clone();
        hyper::service::service_fn(move |request| {
            let busy = door.busy(&connection);
            let door = door.clone();
            let router = router.clone();
            async move {
                let response = answer(&door, router, peer, request).await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(READ_BUFFER_BYTES);
    let serving = watcher.watch(http.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        () = connection.evicted() => {}
        served = serving => {
            if let Err(e) = served {
                if e.is_timeout() && !connection.has_served() {
                    door.refused(Refusal::HeaderTimeout);
                } else {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
            }
        }
    }
}

/// Hands one request to the router, its body guarded, and the peer's
/// address where `ConnectInfo` finds it.
async fn answer(
    door: &Arc<Door>,
    router: Router,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let limits = door.limits();
    let (mut parts, body) = request.into_parts();
    // Bytes are counted as they arrive, not as announced: a client that
    // announces a large body and sends little holds little, so clients
    // that stall cannot fill the cap and turn away everyone else.
    let bytes = door.body_bytes();
    parts.extensions.insert(ConnectInfo(peer));
    let outcome = Arc::new(Outcome::default());
    let body = GuardedBody::new(
        body,
        bytes.clone(),
        outcome.clone(),
        limits.body_timeout,
        limits.body_min_bytes_per_sec,
    );
    let request = Request::from_parts(parts, Body::new(body));
    let Ok(mut response) = router.oneshot(request).await;
    // The handler is done with the body's bytes.
    drop(bytes);
    if let Some(refusal) = outcome.cut() {
        door.refused(refusal);
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if refusal == Refusal::BodyBytesInFlight {
            // Bodies in flight last seconds at most.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
    }
    response
}

/// Errors of one connection that `accept` reports, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
