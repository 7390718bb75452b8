//! What the listener admits: the open connections (and which of them may
//! be closed to make room for a new one), the request body bytes held
//! across all requests, and the rate-limited log lines of what it refuses.
//! The limits are `[server]`'s, read from the current route table each
//! time, so that a reload changes them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, oneshot};

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::routes::RouteTable;

/// File descriptors kept for everything but client connections: the
/// store, plugin files and caches, outgoing `fetch` connections, the
/// metrics listener and its few connections, the runtime's own.
pub const RESERVED_FDS: u64 = 128;

/// At most one log line per refusal reason this often; the line counts
/// what was left out.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Why the listener refused or cut something: the metric's label, and
/// what the log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection was busy with a request when a new one came.
    MaxConnections,
    /// Closed while waiting for a request, to make room for a new one.
    Evicted,
    /// No whole request head in time.
    HeaderTimeout,
    /// A body stalled or came too slowly.
    BodyTimeout,
    /// Too many body bytes held across requests.
    BodyBytesInFlight,
    /// `accept` failed (out of file descriptors and the like).
    AcceptError,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::MaxConnections,
        Refusal::Evicted,
        Refusal::HeaderTimeout,
        Refusal::BodyTimeout,
        Refusal::BodyBytesInFlight,
        Refusal::AcceptError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::Evicted => "evicted",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::BodyBytesInFlight => "body_bytes_in_flight",
            Refusal::AcceptError => "accept_error",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refusal::MaxConnections => {
                "connection refused: server.max_connections reached and every connection busy"
            }
            Refusal::Evicted => {
                "idle connection closed to make room: server.max_connections reached"
            }
            Refusal::HeaderTimeout => {
                "connection cut: no whole request head within server.header_timeout_ms"
            }
            Refusal::BodyTimeout => {
                "request cut: body slower than server.body_min_bytes_per_sec after server.body_timeout_ms"
            }
            Refusal::BodyBytesInFlight => {
                "request refused: server.max_body_bytes_in_flight reached"
            }
            Refusal::AcceptError => "accepting a connection failed; backing off",
        }
    }
}

/// One line per `LOG_EVERY`, and a count of the lines left out.
#[derive(Default)]
struct Throttle {
    next: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Throttle {
    /// `Some(lines left out since the last one)` when a line may be written.
    fn pass(&self) -> Option<u64> {
        let now = Instant::now();
        let mut next = self.next.lock().expect("throttle lock");
        if next.is_some_and(|next| now < next) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *next = Some(now + LOG_EVERY);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

/// The listener's limits, as they stand.
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_min_bytes_per_sec: u64,
    pub max_connections: usize,
    pub max_body_bytes_in_flight: usize,
}

/// An open connection, as the door sees it.
pub struct Connection {
    /// Requests being answered on it.
    busy: AtomicUsize,
    /// Whether a request was ever answered on it: a header timeout then
    /// is an idle keep-alive connection closing, not a refusal.
    served: AtomicBool,
    /// Milliseconds since the door opened at its last request's end (or
    /// its opening): the longest idle is closed first.
    idle_since_ms: AtomicU64,
    evict: Notify,
    /// Resolves once the connection's socket is closed; taken by the one
    /// who evicts it.
    closed: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Connection {
    /// Resolves when the door closes this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    pub fn has_served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }
}

/// Holds a connection's place until dropped, which is after its socket
/// is closed.
pub struct Admitted {
    door: Arc<Door>,
    id: u64,
    pub connection: Arc<Connection>,
    _closed: oneshot::Sender<()>,
}

/// An evicted connection on its way out: its descriptor is free once
/// [`Closing::wait`] returns.
pub struct Closing(Option<oneshot::Receiver<()>>);

impl Closing {
    pub async fn wait(self) {
        if let Some(closed) = self.0 {
            // An error is the sender dropped: the connection is gone.
            let _ = closed.await;
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.door.connections.lock().expect("connections lock");
        open.remove(&self.id);
        self.door.metrics.connections_open.set(open.len() as i64);
    }
}

/// Marks a connection busy with a request until dropped.
pub struct Busy {
    door: Arc<Door>,
    connection: Arc<Connection>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection
            .idle_since_ms
            .store(self.door.now_ms(), Ordering::Relaxed);
        self.connection.served.store(true, Ordering::Relaxed);
        self.connection.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Body bytes a request holds; given back when dropped.
pub struct BodyBytes {
    door: Arc<Door>,
    held: AtomicUsize,
}

impl BodyBytes {
    /// Holds `more` bytes besides, if the in-flight cap allows.
    pub fn grow(&self, more: usize) -> bool {
        if more == 0 {
            return true;
        }
        let cap = self.door.limits().max_body_bytes_in_flight;
        let taken = self
            .door
            .body_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|total| *total <= cap)
            })
            .is_ok();
        if taken {
            self.held.fetch_add(more, Ordering::Relaxed);
            let gauge = &self.door.metrics.body_bytes_in_flight;
            gauge.inc_by(i64::try_from(more).unwrap_or(i64::MAX));
        }
        taken
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

impl Drop for BodyBytes {
    fn drop(&mut self) {
        let held = *self.held.get_mut();
        self.door.body_bytes.fetch_sub(held, Ordering::AcqRel);
        let gauge = &self.door.metrics.body_bytes_in_flight;
        gauge.dec_by(i64::try_from(held).unwrap_or(i64::MAX));
    }
}

/// See the module doc.
pub struct Door {
    routes: Arc<ArcSwap<RouteTable>>,
    pub metrics: Arc<Metrics>,
    /// By id: ids grow, so the map is in order of opening.
    connections: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    body_bytes: AtomicUsize,
    /// The most connections the open-file limit leaves room for.
    fd_room: usize,
    opened: Instant,
    throttles: [Throttle; Refusal::ALL.len()],
}

impl Door {
    pub fn new(routes: Arc<ArcSwap<RouteTable>>, metrics: Arc<Metrics>, fd_room: usize) -> Self {
        Self {
            routes,
            metrics,
            connections: Mutex::default(),
            next_id: AtomicU64::new(0),
            body_bytes: AtomicUsize::new(0),
            fd_room,
            opened: Instant::now(),
            throttles: Default::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        let table = self.routes.load();
        let server: &ServerConfig = &table.server;
        Limits {
            header_timeout: Duration::from_millis(server.header_timeout_ms),
            body_timeout: Duration::from_millis(server.body_timeout_ms),
            body_min_bytes_per_sec: server.body_min_bytes_per_sec,
            max_connections: server.max_connections.min(self.fd_room),
            max_body_bytes_in_flight: server.max_body_bytes_in_flight,
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// A place for a new connection: at the cap, the connection idle
    /// longest (waiting for a request head, TLS handshake or keep-alive)
    /// is closed to make room, and the caller waits for the [`Closing`]s
    /// before accepting more, so descriptors stay within the cap; if every
    /// connection is busy with a request, `None`, and the new one is to
    /// be closed at once.
    pub fn admit(self: &Arc<Self>) -> (Option<Admitted>, Vec<Closing>) {
        let cap = self.limits().max_connections;
        let mut open = self.connections.lock().expect("connections lock");
        let mut evicted = Vec::new();
        while open.len() >= cap {
            let Some(victim) = Self::remove_idlest(&mut open) else {
                drop(open);
                for _ in 0..evicted.len() {
                    self.refused(Refusal::Evicted);
                }
                self.refused(Refusal::MaxConnections);
                return (None, evicted);
            };
            evicted.push(Self::evict(&victim));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (closed_tx, closed_rx) = oneshot::channel();
        let connection = Arc::new(Connection {
            busy: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            evict: Notify::new(),
            closed: Mutex::new(Some(closed_rx)),
        });
        open.insert(id, connection.clone());
        self.metrics.connections_open.set(open.len() as i64);
        drop(open);
        for _ in 0..evicted.len() {
            self.refused(Refusal::Evicted);
        }
        let admitted = Admitted {
            door: self.clone(),
            id,
            connection,
            _closed: closed_tx,
        };
        (Some(admitted), evicted)
    }

    /// Closes the connection idle longest, if any: `accept` found no
    /// file descriptor left.
    pub fn evict_idlest(&self) -> Option<Closing> {
        let mut open = self.connections.lock().expect("connections lock");
        let victim = Self::remove_idlest(&mut open);
        drop(open);
        let closing = Self::evict(victim?.as_ref());
        self.refused(Refusal::Evicted);
        Some(closing)
    }

    fn evict(victim: &Connection) -> Closing {
        victim.evict.notify_one();
        Closing(victim.closed.lock().expect("closed lock").take())
    }

    /// Takes out the connection waiting longest for a request, if any is.
    fn remove_idlest(open: &mut BTreeMap<u64, Arc<Connection>>) -> Option<Arc<Connection>> {
        let id = open
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, c)| c.idle_since_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id)?;
        open.remove(&id)
    }

    pub fn busy(self: &Arc<Self>, connection: &Arc<Connection>) -> Busy {
        connection.busy.fetch_add(1, Ordering::Relaxed);
        Busy {
            door: self.clone(),
            connection: connection.clone(),
        }
    }

    /// The body bytes of one request, none held yet: they are held as
    /// they arrive ([`BodyBytes::grow`]).
    pub fn body_bytes(self: &Arc<Self>) -> Arc<BodyBytes> {
        Arc::new(BodyBytes {
            door: self.clone(),
            held: AtomicUsize::new(0),
        })
    }

    fn count(&self, refusal: Refusal) {
        self.metrics.connection_refused(refusal.label());
    }

    /// Counts a refusal and logs it, at most once per reason every few
    /// seconds.
    pub fn refused(&self, refusal: Refusal) {
        self.count(refusal);
        if let Some(suppressed) = self.throttle(refusal).pass() {
            tracing::warn!(
                reason = refusal.label(),
                suppressed,
                "{}",
                refusal.message()
            );
        }
    }

    /// Counts and logs a failed `accept`, throttled like a refusal.
    pub fn accept_failed(&self, error: &std::io::Error) {
        let refusal = Refusal::AcceptError;
        self.count(refusal);
        if let Some(suppressed) = self.throttle(refusal).pass() {
            tracing::warn!(
                reason = refusal.label(),
                suppressed,
                "{}: {error}",
                refusal.message()
            );
        }
    }

    fn throttle(&self, refusal: Refusal) -> &Throttle {
        let index = Refusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .expect("every refusal is listed");
        &self.throttles[index]
    }
}

/// How many connections the open-file limit leaves room for, after
/// raising the soft limit towards the hard one as far as `wanted`
/// connections need. Logs when the limit holds the connections below
/// `wanted`.
pub fn fit_open_file_limit(wanted: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let needed = (wanted as u64).saturating_add(RESERVED_FDS);
    let soft = match (limit.current, limit.maximum) {
        (None, _) => return wanted,
        (Some(soft), _) if soft >= needed => soft,
        (Some(soft), hard) => {
            let raised = hard.map_or(needed, |hard| hard.min(needed));
            let set = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(raised),
                    maximum: limit.maximum,
                },
            );
            if set.is_ok() { raised } else { soft }
        }
    };
    let room = room_for_connections(soft);
    if room < wanted {
        tracing::warn!(
            open_files = soft,
            max_connections = room,
            "the open-file limit holds server.max_connections lower; raise LimitNOFILE"
        );
    }
    room
}

/// Connections that fit in `open_files` descriptors besides the reserve.
fn room_for_connections(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_from_the_open_file_limit() {
        assert_eq!(room_for_connections(1024), 1024 - RESERVED_FDS as usize);
        assert_eq!(room_for_connections(RESERVED_FDS), 1);
        assert_eq!(room_for_connections(0), 1);
    }

    #[test]
    fn limits_that_would_shut_the_door_are_config_problems_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wirehook.toml");
        let toml = "[server]\nheader_timeout_ms = 0\nbody_timeout_ms = 0\nmax_connections = 0\nmax_body_bytes = 2048\nmax_body_bytes_in_flight = 1024\n";
        std::fs::write(&path, toml).unwrap();
        let config = crate::config::Config::load(&path).unwrap();
        let problems = config.resolve().unwrap_err();
        let keys: Vec<String> = problems.into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "server.header_timeout_ms",
                "server.body_timeout_ms",
                "server.max_connections",
                "server.max_body_bytes_in_flight",
            ]
        );
        let defaults = crate::config::ServerConfig::default();
        assert!(defaults.max_body_bytes_in_flight >= defaults.max_body_bytes);
    }

    #[test]
    fn a_throttle_passes_one_line_and_counts_the_rest() {
        let throttle = Throttle::default();
        assert_eq!(throttle.pass(), Some(0));
        assert_eq!(throttle.pass(), None);
        assert_eq!(throttle.pass(), None);
        assert_eq!(throttle.suppressed.load(Ordering::Relaxed), 2);
    }
}
