//! Who may use the admin listener: the bearer token (scripts), or a
//! console session the token opened (browsers), whose state-changing
//! requests also carry the session's CSRF token. Wrong tokens are
//! counted in metrics and limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header;

use crate::metrics::Metrics;
use crate::secret::Secret;

/// The console's session cookie.
pub const COOKIE: &str = "wirehook_session";

/// The header the console's scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The window wrong tokens are counted over, per client address.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Client addresses and sessions kept at most: past it, the stale ones
/// go (and, if none are, the oldest), so that neither grows without end.
const MAX_ENTRIES: usize = 10_000;

/// An open console session.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    expires: Instant,
}

/// How a request proved itself.
pub enum Caller {
    /// The `Authorization: Bearer` header: a script, no CSRF token needed.
    Bearer,
    /// A console session cookie.
    Session(Session),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credentials, or a wrong or expired one.
    Unauthorized,
    /// Too many wrong tokens from this address; retry after this long.
    Limited(Duration),
}

pub struct Auth {
    token: Secret,
    max_failures: u32,
    session_for: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Auth {
    pub fn new(token: Secret, max_failures_per_minute: u32, session_minutes: u64) -> Self {
        Self {
            token,
            max_failures: max_failures_per_minute,
            session_for: Duration::from_secs(session_minutes.saturating_mul(60)),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` may try a token now.
    pub fn admitted(&self, client: IpAddr) -> Result<(), Denied> {
        let failures = self.failures.lock().expect("admin failures lock");
        match failures.get(&client) {
            Some((since, n)) if *n >= self.max_failures && since.elapsed() < FAILURE_WINDOW => {
                Err(Denied::Limited(FAILURE_WINDOW - since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    /// Checks `candidate` against the token in constant time; a wrong one
    /// is counted (metrics and the client's window) and logged.
    pub fn check_token(
        &self,
        client: IpAddr,
        candidate: &[u8],
        metrics: &Metrics,
    ) -> Result<(), Denied> {
        self.admitted(client)?;
        if self.token.matches(candidate) {
            return Ok(());
        }
        Err(self.failed(client, metrics))
    }

    /// Counts a request without valid credentials.
    pub fn failed(&self, client: IpAddr, metrics: &Metrics) -> Denied {
        metrics.admin_auth_failed();
        let mut failures = self.failures.lock().expect("admin failures lock");
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= MAX_ENTRIES {
                failures.clear();
            }
        }
        let entry = failures.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        // One line when an address starts failing and one when it is
        // limited: a flood of guesses does not flood the log.
        if entry.1 == 1 {
            tracing::warn!(remote = %client, "admin: wrong or missing token");
        } else if entry.1 == self.max_failures {
            tracing::warn!(remote = %client, failures = entry.1, "admin: too many wrong tokens; refusing this address for a minute");
        }
        Denied::Unauthorized
    }

    /// The caller of a request with `headers`, if it proves itself.
    pub fn caller(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        metrics: &Metrics,
    ) -> Result<Caller, Denied> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.as_bytes();
            let token = value
                .strip_prefix(b"Bearer ")
                .or_else(|| value.strip_prefix(b"bearer "))
                .unwrap_or(b"");
            self.check_token(client, token, metrics)?;
            return Ok(Caller::Bearer);
        }
        match cookie(headers, COOKIE).and_then(|id| self.session(&id)) {
            Some(session) => Ok(Caller::Session(session)),
            None => Err(Denied::Unauthorized),
        }
    }

    /// Opens a session; returns its id (the cookie's value) and itself.
    pub fn open_session(&self) -> (String, Session) {
        let id = random_token();
        let session = Session {
            csrf: random_token(),
            expires: Instant::now() + self.session_for,
        };
        let mut sessions = self.sessions.lock().expect("admin sessions lock");
        if sessions.len() >= MAX_ENTRIES {
            let now = Instant::now();
            sessions.retain(|_, s| s.expires > now);
            if sessions.len() >= MAX_ENTRIES
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    pub fn close_session(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.sessions
                .lock()
                .expect("admin sessions lock")
                .remove(&id);
        }
    }

    fn session(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().expect("admin sessions lock");
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }
}

impl Caller {
    /// Whether a state-changing request may go ahead: a bearer always, a
    /// session with its CSRF token (compared in constant time).
    pub fn may_change(&self, csrf: Option<&str>) -> bool {
        match self {
            Caller::Bearer => true,
            Caller::Session(session) => csrf.is_some_and(|given| {
                Secret::new(session.csrf.as_bytes().to_vec()).matches(given.as_bytes())
            }),
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// 32 bytes from the operating system's random source, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(Secret::new(b"right".to_vec()), 3, 60)
    }

    #[test]
    fn wrong_tokens_are_limited_per_address() {
        let (auth, metrics) = (auth(), Metrics::new(Vec::new()));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(
                auth.check_token(client, b"wrong", &metrics),
                Err(Denied::Unauthorized)
            );
        }
        // Limited now, even with the right token.
        assert!(matches!(
            auth.check_token(client, b"right", &metrics),
            Err(Denied::Limited(_))
        ));
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(auth.check_token(other, b"right", &metrics), Ok(()));
        assert!(
            metrics
                .render(&[])
                .contains("wirehook_admin_auth_failures_total 3")
        );
    }

    #[test]
    fn a_session_changes_state_only_with_its_csrf_token() {
        let auth = auth();
        let (id, session) = auth.open_session();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("a=b; {COOKIE}={id}").parse().unwrap(),
        );
        let metrics = Metrics::new(Vec::new());
        let caller = auth
            .caller("127.0.0.1".parse().unwrap(), &headers, &metrics)
            .ok()
            .unwrap();
        assert!(caller.may_change(Some(&session.csrf)));
        assert!(!caller.may_change(Some("forged")));
        assert!(!caller.may_change(None));
        auth.close_session(&headers);
        assert!(
            auth.caller("127.0.0.1".parse().unwrap(), &headers, &metrics)
                .is_err()
        );
    }
}
