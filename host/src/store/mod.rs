//! The durable store behind `queue` routes: events accepted but not yet
//! handled, their delivery log, dead letters and the dedup window.
//!
//! The interface is split by concern: the [`Queue`] (admission, claims,
//! outcomes), the [`DeliveryLog`] (reading what happened, logging what
//! `respond` routes did), [`KvStore`] (the plugins' KV capability) and
//! [`Admin`] (replay, purge, retention). [`Store`] is all four, and is
//! what [`open`] returns: the embedded [`sqlite`] store by default, or
//! [`postgres`] for several wirehook instances on one database. Every
//! method takes the current time ([`UnixMs`]) from its caller, so
//! windows, backoff and retention are tested with injected time.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Backend, DeliveryConfig, StorageConfig};
use crate::event::{Event, Payload};
use crate::secret::Secret;

mod kv;
mod listing;
pub mod postgres;
pub mod private;
pub mod sqlite;
mod traced_kv;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use traced_kv::TracedKv;

pub use crate::clock::UnixMs;

/// The files the store keeps on this machine, for `wirehook_store_bytes`.
pub fn files(storage: &StorageConfig) -> Vec<std::path::PathBuf> {
    match storage.backend {
        Backend::Sqlite => SqliteStore::files(&storage.path).into(),
        Backend::Postgres => Vec::new(),
    }
}

/// Where the store is, for messages: never the URL, which may hold a
/// password.
pub fn location(storage: &StorageConfig) -> String {
    match storage.backend {
        Backend::Sqlite => format!("in {}", storage.path.display()),
        Backend::Postgres => "in PostgreSQL (storage.url)".to_owned(),
    }
}

/// Reads an event's payload again from the raw JSON the store keeps of
/// it, by its provider and kind. Whoever opens a store gives it this (the
/// providers decode), so that the store depends on no provider.
pub type Redecode = fn(provider: &str, kind: &str, raw_json: &str) -> Result<Payload, String>;

/// Who opens the store: the daemon that admits and delivers events, or
/// a command that reads and administers it beside running daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Daemon,
    Command,
}

/// Opens the store `[storage]` names, at `url` (`storage.url` as
/// [`StorageConfig::resolve`] read it) for PostgreSQL. The daemon's
/// SQLite store is refused while another daemon holds it; PostgreSQL has
/// no such lock, as several daemons share one database.
pub async fn open(
    storage: &StorageConfig,
    url: Option<&Secret>,
    delivery: &DeliveryConfig,
    role: Role,
    redecode: Redecode,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match storage.backend {
        Backend::Sqlite => Arc::new(match role {
            Role::Daemon => SqliteStore::open_owned(&storage.path, redecode)?,
            Role::Command => SqliteStore::open(&storage.path, redecode)?,
        }),
        Backend::Postgres => {
            let url = url.ok_or_else(|| StoreError::Config("storage.url is not set".to_owned()))?;
            let url = std::str::from_utf8(url.expose())
                .map_err(|_| StoreError::Config("storage.url is not UTF-8".to_owned()))?;
            let pool_size = match role {
                Role::Daemon => storage.pool_size,
                Role::Command => 2,
            };
            let tls = postgres::Tls {
                ca_file: storage.ca_file.as_deref(),
            };
            Arc::new(
                PostgresStore::connect(url, tls, pool_size, delivery.lease_secs, role, redecode)
                    .await?,
            )
        }
    })
}

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for its (next) attempt.
    Queued,
    /// A worker is handing it to the plugins.
    Running,
    /// Every plugin handled it.
    Delivered,
    /// Failed for good: dropped by a plugin or out of attempts.
    Dead,
    /// A `respond` route answered it inline (logged only).
    Responded,
    /// A `respond` route failed it inline (logged only).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Responded => "responded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Delivered,
            Self::Dead,
            Self::Responded,
            Self::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// What happened to a request's event at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Stored under this id; it will be handed to the plugins.
    Queued(i64),
    /// Seen inside the dedup window; not stored again.
    Duplicate,
}

/// What becomes of events as they are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Queued, for a worker to claim from the store.
    Queue,
    /// Claimed in the same write for their first attempt: the caller
    /// hands them to a worker itself, and saves the worker a claim.
    Claim,
}

/// An event a worker has claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    /// The attempt this claim is, from 1.
    pub attempt: u32,
    pub event: Event,
    /// The W3C `traceparent` of the event's admission, when it was traced.
    pub trace: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at `at`.
    Retry {
        error: String,
        at: UnixMs,
    },
    Dead {
        error: String,
    },
    /// Its route is not configured: back in the queue as it was claimed
    /// (the attempt not counted), where it waits for a route of that
    /// name (see [`Store::claim`]).
    Wait,
}

impl Outcome {
    /// The name an attempt's record gives it; `None` for [`Outcome::Wait`],
    /// which is no attempt.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Delivered => Some("delivered"),
            Self::Retry { .. } => Some("retry"),
            Self::Dead { .. } => Some("dead"),
            Self::Wait => None,
        }
    }

    /// Why the attempt failed, if it did.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Retry { error, .. } | Self::Dead { error } => Some(error),
            Self::Delivered | Self::Wait => None,
        }
    }
}

/// How one attempt ended, with what the attempts' history keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    pub outcome: Outcome,
    /// When the plugins were handed the event (the store's own time of
    /// the outcome when not known).
    pub started: Option<UnixMs>,
    /// The plugin that failed it, if one did.
    pub plugin: Option<String>,
    /// How long the plugins took, if the caller measured it: the
    /// record's `duration_us`, which the charts' percentiles count.
    pub duration_us: Option<u64>,
}

impl From<(i64, Outcome)> for Finished {
    fn from((id, outcome): (i64, Outcome)) -> Self {
        Self {
            id,
            outcome,
            started: None,
            plugin: None,
            duration_us: None,
        }
    }
}

/// One attempt at delivering a queued event, as its history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// From 1; a replay counts afresh.
    pub number: u32,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    /// `delivered`, `retry` or `dead`.
    pub outcome: String,
    pub error: Option<String>,
    pub plugin: Option<String>,
}

/// A `respond` route's event and what became of it.
#[derive(Debug, Clone)]
pub struct Response {
    pub event: Event,
    /// The reply's JSON, if a plugin replied.
    pub reply: Option<String>,
    /// Why the plugins failed, if they did.
    pub error: Option<String>,
    pub duration_us: u64,
}

/// One row of the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: i64,
    pub delivery_id: String,
    pub route: String,
    pub provider: String,
    pub kind: String,
    pub status: Status,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub received_at_ms: u64,
    pub updated_at_ms: u64,
    pub next_attempt_at_ms: Option<u64>,
    /// Respond routes: the reply sent.
    pub reply: Option<String>,
    /// How long the plugins took: a respond route's answer, a queued
    /// event's latest attempt.
    pub duration_us: Option<u64>,
}

/// Which records to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub route: Option<String>,
    pub kind: Option<String>,
    /// Text found in the delivery id or the body (contact, message text),
    /// ignoring ASCII case, each of its words starting a word there (see
    /// `sqlite/search.rs`, `postgres/search.rs`).
    pub q: Option<String>,
    /// Received at or after this.
    pub since: Option<UnixMs>,
    /// Received before this.
    pub until: Option<UnixMs>,
    /// Only ids below this: the next page of a listing whose last row
    /// had this id.
    pub before: Option<i64>,
    /// At most this many (0: all).
    pub limit: usize,
}

/// One event's row as the console's charts count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub route: String,
    pub status: Status,
    pub received_at_ms: u64,
    /// Respond routes: how long the plugins took.
    pub duration_us: Option<u64>,
}

/// The most rows [`Admin::activity`] returns: a chart's window of a busy
/// store is sampled by its newest rows.
pub const ACTIVITY_ROWS: usize = 200_000;

/// Why a store operation failed. The backend's own error is boxed, so
/// callers match on what happened, not on which database said it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached right now (connection lost or
    /// refused, pool exhausted); worth retrying later.
    #[error("store: the database is unavailable: {0}")]
    Unavailable(String),
    /// `[storage]` does not say how to reach the database.
    #[error("store: {0}")]
    Config(String),
    #[error("store: cannot decode stored event {id}: {reason}")]
    Corrupt { id: i64, reason: String },
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: commit failed: {0}")]
    Commit(String),
    #[error("store is closed")]
    Closed,
    #[error("respond log is {0} rows behind; this row is not logged")]
    LogBacklog(usize),
    #[error(
        "store: the database has layout {found}, written by a newer wirehook; this one knows up to {known}"
    )]
    NewerLayout { found: i64, known: i64 },
    #[error(
        "store: another wirehook daemon is running on {0} (it holds wirehook.lock); one store has one daemon"
    )]
    Owned(std::path::PathBuf),
}

/// Durable key-value state, one namespace per plugin.
#[async_trait::async_trait]
pub trait KvStore: Send + Sync + 'static {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes `key` unless the namespace would then hold more than
    /// `max_total` bytes of keys and values; returns whether it wrote.
    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        max_total: u64,
    ) -> Result<bool, StoreError>;

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError>;

    /// Keys starting with `prefix`, in order, at most `limit`.
    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}

/// Events accepted and waiting for their plugins: admission with dedup,
/// claims by workers, and how attempts ended.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Durably records `events`, skipping those whose delivery id came
    /// with an event on the same route received (`received_at_ms`) at or
    /// after `dedup_since`. Returns only once the write is committed: the
    /// caller may acknowledge the request then. Claimed events are
    /// `running` (their first attempt) when recorded, and come back
    /// queued with [`Queue::recover`] if that attempt's process is gone.
    async fn enqueue(
        &self,
        intake: Intake,
        events: Vec<Event>,
        now: UnixMs,
        dedup_since: UnixMs,
    ) -> Result<Vec<Admission>, StoreError> {
        self.enqueue_traced(intake, events, None, now, dedup_since)
            .await
    }

    /// [`Queue::enqueue`], keeping `trace` (a W3C `traceparent`) with the
    /// events for their attempts' spans to join.
    async fn enqueue_traced(
        &self,
        intake: Intake,
        events: Vec<Event>,
        trace: Option<String>,
        now: UnixMs,
        dedup_since: UnixMs,
    ) -> Result<Vec<Admission>, StoreError>;

    /// Claims up to `limit` events due at `now`, oldest first, of the
    /// routes named in `routes` (of every route when `None`): events of
    /// a route that is not configured wait in the queue, untouched.
    async fn claim(
        &self,
        now: UnixMs,
        limit: usize,
        routes: Option<Vec<String>>,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records how attempts ended, by event id.
    async fn finish(&self, outcomes: Vec<(i64, Outcome)>, now: UnixMs) -> Result<(), StoreError> {
        self.finish_attempts(outcomes.into_iter().map(Finished::from).collect(), now)
            .await
    }

    /// Records how attempts ended, and each in the event's attempts'
    /// history, in the same write.
    async fn finish_attempts(&self, outcomes: Vec<Finished>, now: UnixMs)
    -> Result<(), StoreError>;

    /// When the next queued event of `routes` (of any route when `None`)
    /// falls due, if any is queued.
    async fn next_due(&self, routes: Option<Vec<String>>) -> Result<Option<UnixMs>, StoreError>;

    /// Queued events of routes not named in `routes`, counted by route.
    async fn waiting(&self, routes: Vec<String>) -> Result<Vec<(String, u64)>, StoreError>;

    /// Events queued or running.
    async fn depth(&self) -> Result<u64, StoreError>;

    /// Puts events claimed by a process that is gone back in the queue.
    async fn recover(&self, now: UnixMs) -> Result<u64, StoreError>;

    /// Resolves when another process may have queued events (a shared
    /// database tells its listeners); never, for a store only this
    /// process writes to.
    async fn queued_elsewhere(&self) {
        std::future::pending::<()>().await
    }

    /// Resolves once the store can write nothing more (its writer is
    /// gone); the daemon then exits, to be restarted.
    fn gone(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(std::future::pending())
    }
}

/// The record of what became of every event.
#[async_trait::async_trait]
pub trait DeliveryLog: Send + Sync + 'static {
    /// Logs an event a `respond` route handled inline. Returns once the
    /// row is handed to the store, not once it is written: the log is a
    /// record, not a promise to anyone, and the store reports a failure
    /// to write it in wirehook's own log.
    async fn log_response(&self, response: Response, now: UnixMs) -> Result<(), StoreError>;

    /// Lists the delivery log, newest first.
    async fn list(&self, filter: Filter) -> Result<Vec<Record>, StoreError>;

    /// One record and its event.
    async fn get(&self, id: i64) -> Result<Option<(Record, Event)>, StoreError>;

    /// A queued event's attempts, oldest first.
    async fn attempts(&self, id: i64) -> Result<Vec<Attempt>, StoreError>;

    /// Changes each time this process's writes to the log commit, for
    /// readers that follow it; `None` when the store cannot tell (they
    /// then read again on a timer).
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// What operators do to stored events: replay, purge, retention.
#[async_trait::async_trait]
pub trait Admin: Send + Sync + 'static {
    /// Re-queues events (dead or not) for an immediate attempt, counting
    /// attempts afresh. Returns the ids found.
    async fn replay(&self, ids: Vec<i64>, now: UnixMs) -> Result<Vec<i64>, StoreError>;

    /// Deletes dead letters (all of them when `ids` is empty).
    async fn purge_dead(&self, ids: Vec<i64>) -> Result<u64, StoreError>;

    /// Events received at or after `since`, newest first, at most
    /// [`ACTIVITY_ROWS`]: what the console's charts count.
    async fn activity(&self, since: UnixMs) -> Result<Vec<Activity>, StoreError>;

    /// Deletes finished records updated before `finished_before` and
    /// dedup entries older than `dedup_before`.
    async fn prune(&self, finished_before: UnixMs, dedup_before: UnixMs)
    -> Result<u64, StoreError>;
}

/// Every concern of the store, as one backend provides them.
pub trait Store: Queue + DeliveryLog + Admin + KvStore {}

impl<T: Queue + DeliveryLog + Admin + KvStore> Store for T {}

#[cfg(test)]
mod tests;
