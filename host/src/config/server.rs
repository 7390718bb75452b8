//! `[server]`: the public listener and its limits.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use super::Problem;

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Terminate TLS here instead of behind a reverse proxy.
    pub tls: Option<TlsConfig>,
    /// Where `/metrics` is served. A listener of its own, so that the
    /// public webhook port never exposes route names and traffic figures.
    pub metrics_listen: Option<SocketAddr>,
    /// How many signature checks that cost more than hashing the body
    /// (OneRoute's against the re-serialised body) may run at once; a
    /// request over it is refused 503 at once. 0 refuses every such check.
    pub max_slow_checks: usize,
    // The door's limits (README, "The door's limits"), read afresh for
    // every connection and request, so that a reload changes them.
    /// A whole request head (after the TLS handshake, which has as long)
    /// must arrive within this of a connection opening or of its previous
    /// response: it is also how long an idle keep-alive connection stays.
    pub header_timeout_ms: u64,
    /// A request body may take this long at any pace; after it, it must
    /// keep up `body_min_bytes_per_sec` on average or is cut (408).
    pub body_timeout_ms: u64,
    /// 0: the whole body within `body_timeout_ms`.
    pub body_min_bytes_per_sec: u64,
    /// Open connections; over it the longest-idle connection waiting for a
    /// request is closed to make room, and if every one is busy the new
    /// one is. Kept below the open-file limit.
    pub max_connections: usize,
    /// Request body bytes held at once across all requests, counted as
    /// they arrive; a request whose bytes would pass it gets 503 at once.
    pub max_body_bytes_in_flight: usize,
}

/// `server.tls`: PEM files, re-read on every reload.
/// `${CREDENTIALS_DIRECTORY}` is expanded, as in `file:` secrets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            tls: None,
            metrics_listen: None,
            max_slow_checks: std::thread::available_parallelism().map_or(2, usize::from),
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            body_min_bytes_per_sec: 4096,
            max_connections: 1024,
            max_body_bytes_in_flight: 64 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// What types cannot say: limits that would shut the door.
    pub(super) fn problems(&self, problems: &mut Vec<Problem>) {
        for (key, value) in [
            ("server.max_body_bytes", self.max_body_bytes as u64),
            ("server.header_timeout_ms", self.header_timeout_ms),
            ("server.body_timeout_ms", self.body_timeout_ms),
            ("server.max_connections", self.max_connections as u64),
        ] {
            if value == 0 {
                problems.push(Problem::new(key, "must be at least 1"));
            }
        }
        if self.max_body_bytes_in_flight < self.max_body_bytes {
            problems.push(Problem::new(
                "server.max_body_bytes_in_flight",
                "must be at least server.max_body_bytes",
            ));
        }
    }
}
