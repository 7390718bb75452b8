//! `[admin]`: the admin API and the delivery console, on a listener of
//! their own (never the providers'), behind a bearer token.

use std::net::SocketAddr;

use serde::Deserialize;

use super::Problem;
use crate::secret::{Secret, SecretSource};

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin API and console are served; none when unset.
    pub listen: Option<SocketAddr>,
    /// The bearer token (and the console's login), in the secret forms.
    pub token: Option<SecretSource>,
    /// Wrong tokens one client address may send in a minute; past it,
    /// 429 until the minute is over.
    pub max_failures_per_minute: u32,
    /// How long a console login lasts.
    pub session_minutes: u64,
    /// Connections the admin listener keeps open at once.
    pub max_connections: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: None,
            token: None,
            max_failures_per_minute: 10,
            session_minutes: 12 * 60,
            max_connections: 64,
        }
    }
}

/// `[admin]`, resolved: the token read.
#[derive(Debug, Clone)]
pub struct ResolvedAdmin {
    pub listen: Option<SocketAddr>,
    pub token: Option<Secret>,
    pub max_failures_per_minute: u32,
    pub session_minutes: u64,
    pub max_connections: usize,
}

impl AdminConfig {
    /// Reads the token, refusing a listener without one; reported by key,
    /// never the value.
    pub(super) fn resolve(&self, problems: &mut Vec<Problem>) -> ResolvedAdmin {
        let token = match (&self.listen, &self.token) {
            (Some(_), None) => {
                problems.push(Problem::new(
                    "admin.token",
                    "must be set when admin.listen is (e.g. \"env:ADMIN_TOKEN\")",
                ));
                None
            }
            (_, Some(source)) => match source.resolve() {
                Ok(secret) if secret.expose().is_empty() => {
                    problems.push(Problem::new("admin.token", "must not be empty"));
                    None
                }
                Ok(secret) => Some(secret),
                Err(reason) => {
                    problems.push(Problem::new("admin.token", reason.to_string()));
                    None
                }
            },
            (None, None) => None,
        };
        for (key, value) in [
            ("admin.session_minutes", self.session_minutes),
            ("admin.max_connections", self.max_connections as u64),
        ] {
            if value == 0 {
                problems.push(Problem::new(key, "must be at least 1"));
            }
        }
        ResolvedAdmin {
            listen: self.listen,
            token,
            max_failures_per_minute: self.max_failures_per_minute,
            session_minutes: self.session_minutes,
            max_connections: self.max_connections,
        }
    }
}
