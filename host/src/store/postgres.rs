//! PostgreSQL: one database shared by several wirehook instances behind a
//! load balancer.
//!
//! Why tokio-postgres with deadpool-postgres: both are maintained, async
//! on the tokio runtime the daemon already runs, and small (no query
//! macros or compile-time database); tokio-postgres gives direct access
//! to LISTEN/NOTIFY on a connection of its own, and the pool replaces a
//! connection that broke (PostgreSQL restarted) by itself.
//!
//! Several instances at once: a claim takes due events with
//! `FOR UPDATE SKIP LOCKED`, so two instances never take the same event,
//! and marks them `running` under a lease (`lease_until_ms`, `holder`)
//! that the holding instance renews while it has them (`listen.rs`). When
//! an instance dies, its leases lapse and any instance claims the events
//! again: delivery is at least once. An outcome is recorded only by the
//! instance that holds the event. Admission dedups with the primary key
//! of `seen` (route, delivery id): the same id posted to two instances at
//! once inserts one mark, the other waits on it and sees a duplicate.
//! Admissions are written in batches, one statement and one commit each
//! (`admit.rs`). Events queued (not claimed at intake) are announced with
//! NOTIFY, so that an idle instance claims them at once.
//!
//! Connections use TLS as the URL's `sslmode` asks (`tls.rs`).
//!
//! Every operation is bounded: the pool waits [`OP_TIMEOUT`] at most for
//! a connection, and a statement that does not answer in that time fails
//! as [`StoreError::Unavailable`], which the door answers with 503.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};

use super::{
    Admission, Claimed, Finished, Intake, Outcome, Queue, Redecode, Role, Status, StoreError,
    UnixMs,
};
use crate::event::{Event, Source};

mod admit;
mod kv;
mod listen;
mod log;
mod schema;
mod search;
pub mod tls;

/// The channel queued events are announced on.
const CHANNEL: &str = "wirehook_queue";

/// Longest any one store operation may take, waiting for a connection
/// included.
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store; cheap to share behind an `Arc`.
pub struct PostgresStore {
    pool: Pool,
    /// This instance's name in `holder`, unique per process.
    holder: String,
    lease_ms: u64,
    /// Events this instance holds (claimed, not finished): their leases
    /// are renewed.
    held: Arc<Mutex<HashSet<i64>>>,
    /// Woken when another instance may have queued events.
    queued: Arc<tokio::sync::Notify>,
    responses: log::ResponseLog,
    admitter: admit::Admitter,
    /// How events read back get their payload.
    redecode: Redecode,
    /// The daemon's background tasks (listener, lease renewal), ended
    /// with the store.
    _tasks: listen::Tasks,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        pg_error(e)
    }
}

/// A lost or refused connection is [`StoreError::Unavailable`]; what
/// the database refused is a backend error.
pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = match e.code() {
        None => true,
        Some(code) => {
            let class = &code.code()[..2];
            // Connection exceptions, insufficient resources, operator
            // intervention (shutdown, "cannot connect now").
            matches!(class, "08" | "53" | "57")
        }
    };
    if unavailable {
        // tokio-postgres keeps the cause (a refused TLS handshake, say)
        // out of its own message.
        let reason = match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        StoreError::Unavailable(reason)
    } else {
        StoreError::Backend(Box::new(e))
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Runs `op`, failing it as unavailable if it does not end in time.
async fn bounded<T>(op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(OP_TIMEOUT, op)
        .await
        .map_err(|_| StoreError::Unavailable(format!("no answer within {OP_TIMEOUT:?}")))?
}

/// How connections are encrypted beside the URL's `sslmode`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tls<'a> {
    /// Certificates trusted in place of Mozilla's roots.
    pub ca_file: Option<&'a std::path::Path>,
}

impl PostgresStore {
    /// Connects to the database at `url`, applying migrations. The daemon
    /// also listens for queued events and renews its leases.
    pub async fn connect(
        url: &str,
        tls: Tls<'_>,
        pool_size: usize,
        lease_secs: u64,
        role: Role,
        redecode: Redecode,
    ) -> Result<Self, StoreError> {
        // The parser's own message may quote the URL, password and all.
        let (mut config, mode) = tls::parse_url(url)
            .map_err(|reason| StoreError::Config(format!("storage.url: {reason}")))?;
        let connector = tls::connector(mode, tls.ca_file).map_err(StoreError::Config)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("wirehook");
        }
        let manager = Manager::from_config(
            config.clone(),
            connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        {
            let mut client = bounded(async { pool.get().await.map_err(pool_error) })
                .await
                .map_err(|e| match e {
                    // Say which setting a refused handshake comes from.
                    StoreError::Unavailable(reason) if reason.contains("TLS") => {
                        StoreError::Unavailable(format!(
                            "storage.url (sslmode {}): {reason}",
                            mode.as_str()
                        ))
                    }
                    other => other,
                })?;
            bounded(schema::migrate(&mut client)).await?;
        }
        let held = Arc::default();
        let queued = Arc::new(tokio::sync::Notify::new());
        let holder = format!("{:016x}", fastrand::u64(..));
        let lease_ms = lease_secs.saturating_mul(1000).max(1);
        let tasks = match role {
            Role::Daemon => listen::Tasks::start(
                config,
                connector,
                pool.clone(),
                holder.clone(),
                lease_ms,
                Arc::clone(&held),
                Arc::clone(&queued),
            ),
            Role::Command => listen::Tasks::none(),
        };
        Ok(Self {
            responses: log::ResponseLog::start(pool.clone()),
            admitter: admit::Admitter::start(pool.clone(), holder.clone()),
            redecode,
            pool,
            holder,
            lease_ms,
            held,
            queued,
            _tasks: tasks,
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    fn hold(&self, ids: impl IntoIterator<Item = i64>) {
        self.held.lock().expect("held ids poisoned").extend(ids);
    }
}

/// An event from a row of `events` (with `raw_json`).
pub(super) fn row_event(
    row: &tokio_postgres::Row,
    redecode: Redecode,
) -> Result<Event, StoreError> {
    let id: i64 = row.get("id");
    let provider: String = row.get("provider");
    let kind: String = row.get("kind");
    let raw_json: String = row.get("raw_json");
    let payload = redecode(&provider, &kind, &raw_json)
        .map_err(|reason| StoreError::Corrupt { id, reason })?;
    Ok(Event {
        source: Source {
            provider,
            route: row.get("route"),
            delivery_id: row.get("delivery_id"),
            received_at_ms: UnixMs::from_i64(row.get("received_at_ms")).0,
            attempt: (row.get::<_, i32>("attempts").max(1)) as u32,
        },
        kind,
        payload,
        raw_json,
    })
}

/// Claims due events and events whose lease lapsed; see the module doc.
const CLAIM: &str = "
WITH picked AS (
    SELECT id FROM events
    WHERE ((status = 'queued' AND next_attempt_at_ms <= $1)
           OR (status = 'running' AND lease_until_ms < $1))
      AND ($3::text[] IS NULL OR route = ANY($3))
    ORDER BY next_attempt_at_ms, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED)
UPDATE events AS e
SET status = 'running', attempts = e.attempts + 1, updated_at_ms = $1,
    lease_until_ms = $4, holder = $5
FROM picked WHERE e.id = picked.id
RETURNING e.id, e.attempts, e.provider, e.route, e.delivery_id, e.received_at_ms, e.kind,
          e.raw_json, e.trace_context";

/// Records how attempts ended, an element of each array per event, where
/// this instance still holds the event.
const FINISH: &str = "
WITH ended AS (
    UPDATE events AS e
    SET status = o.status, last_error = COALESCE(o.error, e.last_error),
        next_attempt_at_ms = o.next, updated_at_ms = $5, lease_until_ms = NULL, holder = NULL,
        duration_us = COALESCE(o.duration, e.duration_us)
    FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $7::int8[], $8::text[],
                $9::text[], $10::int8[]) AS o(id, status, error, next, started, outcome, plugin,
                                              duration)
    WHERE e.id = o.id AND e.status = 'running' AND e.holder = $6
    RETURNING e.id, e.attempts, o.started, o.outcome, o.error, o.plugin
)
INSERT INTO attempts (event_id, number, started_at_ms, finished_at_ms, outcome, error, plugin)
SELECT id, attempts, COALESCE(started, $5), $5, outcome, error, plugin FROM ended";

/// Puts events whose route is not configured back in the queue as they
/// were claimed, where this instance still holds them.
const WAIT: &str = "
UPDATE events SET status = 'queued', attempts = GREATEST(attempts - 1, 0),
                  next_attempt_at_ms = $2, lease_until_ms = NULL, holder = NULL
WHERE id = ANY($1) AND status = 'running' AND holder = $3";

#[async_trait::async_trait]
impl Queue for PostgresStore {
    async fn enqueue_traced(
        &self,
        intake: Intake,
        events: Vec<Event>,
        trace: Option<String>,
        now: UnixMs,
        dedup_since: UnixMs,
    ) -> Result<Vec<Admission>, StoreError> {
        let lease_until = now.plus_ms(self.lease_ms);
        let admissions = self
            .admitter
            .admit(intake, events, trace, now, dedup_since, lease_until)
            .await?;
        if intake == Intake::Claim {
            self.hold(admissions.iter().filter_map(|a| match a {
                Admission::Queued(id) => Some(*id),
                Admission::Duplicate => None,
            }));
        }
        Ok(admissions)
    }

    async fn claim(
        &self,
        now: UnixMs,
        limit: usize,
        routes: Option<Vec<String>>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let lease = now.plus_ms(self.lease_ms).as_i64();
        let rows = bounded(async {
            let client = self.client().await?;
            let claim = client.prepare_cached(CLAIM).await?;
            Ok(client
                .query(
                    &claim,
                    &[
                        &now.as_i64(),
                        &(limit as i64),
                        &routes,
                        &lease,
                        &self.holder,
                    ],
                )
                .await?)
        })
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            let id: i64 = row.get("id");
            match row_event(row, self.redecode) {
                Ok(event) => claimed.push(Claimed {
                    id,
                    attempt: row.get::<_, i32>("attempts").max(1) as u32,
                    event,
                    trace: row.get("trace_context"),
                }),
                // Left queued, it would be claimed first again and fail
                // every claim after it: it goes to the dead letters.
                Err(e) => {
                    tracing::error!(id, "dead letter: {e}");
                    unreadable.push((
                        id,
                        Outcome::Dead {
                            error: e.to_string(),
                        },
                    ));
                }
            }
        }
        self.hold(rows.iter().map(|row| row.get::<_, i64>("id")));
        if !unreadable.is_empty() {
            self.finish(unreadable, now).await?;
        }
        // Oldest first, which RETURNING does not promise.
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn finish_attempts(
        &self,
        outcomes: Vec<Finished>,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        // Released whether or not the write succeeds: an outcome not
        // recorded lets the lease lapse, and the event is claimed again.
        {
            let mut held = self.held.lock().expect("held ids poisoned");
            for finished in &outcomes {
                held.remove(&finished.id);
            }
        }
        let mut waits = Vec::new();
        let (mut ids, mut statuses, mut errors, mut nexts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut starts, mut names, mut plugins, mut durations) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for finished in &outcomes {
            let (id, outcome) = (&finished.id, &finished.outcome);
            let (status, error, next) = match outcome {
                Outcome::Wait => {
                    waits.push(*id);
                    continue;
                }
                Outcome::Delivered => (Status::Delivered, None, None),
                Outcome::Retry { error, at } => {
                    (Status::Queued, Some(error.as_str()), Some(at.as_i64()))
                }
                Outcome::Dead { error } => (Status::Dead, Some(error.as_str()), None),
            };
            ids.push(*id);
            statuses.push(status.as_str());
            errors.push(error);
            nexts.push(next);
            starts.push(finished.started.map(UnixMs::as_i64));
            names.push(outcome.name());
            plugins.push(finished.plugin.as_deref());
            durations.push(finished.duration_us.map(|us| us as i64));
        }
        // Each event's outcome stands alone: one statement for the ends
        // and one for the waits, each its own transaction.
        bounded(async {
            let client = self.client().await?;
            if !ids.is_empty() {
                let end = client.prepare_cached(FINISH).await?;
                client
                    .execute(
                        &end,
                        &[
                            &ids,
                            &statuses,
                            &errors,
                            &nexts,
                            &now.as_i64(),
                            &self.holder,
                            &starts,
                            &names,
                            &plugins,
                            &durations,
                        ],
                    )
                    .await?;
            }
            if !waits.is_empty() {
                let wait = client.prepare_cached(WAIT).await?;
                client
                    .execute(&wait, &[&waits, &now.as_i64(), &self.holder])
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn next_due(&self, routes: Option<Vec<String>>) -> Result<Option<UnixMs>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT MIN(next_attempt_at_ms) FROM events
                     WHERE status = 'queued' AND ($1::text[] IS NULL OR route = ANY($1))",
                    &[&routes],
                )
                .await?;
            Ok(row.get::<_, Option<i64>>(0).map(UnixMs::from_i64))
        })
        .await
    }

    async fn waiting(&self, routes: Vec<String>) -> Result<Vec<(String, u64)>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT route, COUNT(*) FROM events
                     WHERE status = 'queued' AND NOT (route = ANY($1))
                     GROUP BY route ORDER BY route",
                    &[&routes],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| (row.get(0), row.get::<_, i64>(1).max(0) as u64))
                .collect())
        })
        .await
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "SELECT COUNT(*) FROM events WHERE status IN ('queued', 'running')",
                    &[],
                )
                .await?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
        .await
    }

    /// Only events whose lease lapsed: the others belong to instances
    /// that are running.
    async fn recover(&self, now: UnixMs) -> Result<u64, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let n = client
                .execute(
                    "UPDATE events SET status = 'queued', next_attempt_at_ms = $1,
                                       updated_at_ms = $1, lease_until_ms = NULL, holder = NULL
                     WHERE status = 'running' AND lease_until_ms < $1",
                    &[&now.as_i64()],
                )
                .await?;
            Ok(n)
        })
        .await
    }

    async fn queued_elsewhere(&self) {
        self.queued.notified().await
    }
}
