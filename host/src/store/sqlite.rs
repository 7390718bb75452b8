//! The embedded store: one SQLite file in WAL mode under `storage.path`.
//!
//! Why SQLite: one file, crash-safe with WAL and `synchronous = FULL`,
//! readable by `wirehook events` while the daemon runs (WAL lets readers
//! in beside the writer), and a query language for the delivery log. The
//! cost of durability is an fsync per commit, so every operation goes
//! through one writer thread (`sqlite/writer.rs`) that commits whatever
//! has queued up since the last commit in one transaction (group commit):
//! under load, hundreds of acknowledgements share one fsync.
//!
//! Only what was promised needs the fsync: a batch that acknowledges
//! events (or writes KV, or replays) commits with `synchronous = FULL`;
//! one of claims, outcomes and the respond log commits with `NORMAL`,
//! which in WAL mode survives a crash of the process, not of the machine,
//! and reaches the disk with the next FULL commit. Losing such a write
//! to a power cut means an event delivered again (at least once still
//! holds) or a respond-log row missing. Respond-log rows also wait a
//! moment for company, so that they share pages and commits. Checkpoints
//! run on a thread of their own (`sqlite/checkpoint.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::{
    ACTIVITY_ROWS, Activity, Admin, Admission, Attempt, Claimed, DeliveryLog, Filter, Finished,
    Intake, Outcome, Queue, Record, Redecode, Response, Status, StoreError, UnixMs,
};
use crate::event::Event;
use crate::store::private;

mod attempts;
mod checkpoint;
mod respond_log;
mod rows;
mod schema;
mod search;
mod seen;
mod writer;

use rows::{EncodedEvent, Inserts, row_event, row_record};
pub(in crate::store) use writer::Commit;
use writer::{Job, Note, Work};

/// Claims up to ?2 events due at ?1 of the routes in the JSON array ?3
/// (of every route when NULL). `LIMIT (?2 + 0)`, not `LIMIT ?2`:
/// SQLite re-plans a statement that binds both a range and a bare limit
/// whenever the range's value changes, which for a claim is every time.
pub(super) const CLAIM: &str = "
UPDATE events SET status = 'running', attempts = attempts + 1, updated_at_ms = ?1
WHERE id IN (SELECT id FROM events
             WHERE status = 'queued' AND next_attempt_at_ms <= ?1
               AND (?3 IS NULL OR route IN (SELECT value FROM json_each(?3)))
             ORDER BY next_attempt_at_ms, id LIMIT (?2 + 0))
RETURNING id, attempts, provider, route, delivery_id, received_at_ms, kind, trace_context,
          (SELECT payload FROM event_bodies AS b WHERE b.id = events.id) AS payload,
          (SELECT raw_json FROM event_bodies AS b WHERE b.id = events.id) AS raw_json";

/// Events queued or running, counted in the pending index: a term per
/// status, as SQLite uses a partial index only for a query whose terms
/// match its condition's.
pub(super) const PENDING: &str = "
SELECT (SELECT COUNT(*) FROM events WHERE status = 'queued')
     + (SELECT COUNT(*) FROM events WHERE status = 'running')";

/// When the next queued event of the routes in the JSON array ?1 (of any
/// route when NULL) falls due.
pub(super) const NEXT_DUE: &str = "SELECT MIN(next_attempt_at_ms) FROM events
WHERE status = 'queued' AND (?1 IS NULL OR route IN (SELECT value FROM json_each(?1)))";

/// A route list as the statements above bind it.
fn routes_param(routes: Option<Vec<String>>) -> Option<String> {
    routes.map(|routes| serde_json::to_string(&routes).expect("names serialize"))
}

/// The SQLite store; cheap to share behind an `Arc`.
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    /// Respond-log rows waiting for the writer.
    responses: Arc<Mutex<respond_log::PendingResponses>>,
    /// The dedup window, rebuilt by the first enqueue; only the writer
    /// thread takes the lock.
    seen: Arc<Mutex<Option<seen::Seen>>>,
    /// The KV quota's running totals.
    pub(super) kv_totals: super::kv::Totals,
    /// Closed when the writer thread ends.
    writer: tokio::sync::watch::Receiver<()>,
    /// Counts the commits that changed rows.
    written: tokio::sync::watch::Receiver<u64>,
    /// How events read back get their payload.
    redecode: Redecode,
    /// `wirehook.lock`, locked while this store is the daemon's.
    _owner: Option<std::fs::File>,
    _checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// The files the store in `dir` lives in: the database and its
    /// write-ahead log.
    pub fn files(dir: &Path) -> [PathBuf; 2] {
        [dir.join("wirehook.db"), dir.join("wirehook.db-wal")]
    }

    /// Opens (creating if needed) `dir/wirehook.db`, beside a daemon that
    /// may be running on it (as `wirehook events` does).
    pub fn open(dir: &Path, redecode: Redecode) -> Result<Self, StoreError> {
        Self::open_as(dir, None, redecode)
    }

    /// Opens the store as the daemon that admits events into it, which
    /// holds the dedup window in memory: refused while another process
    /// holds it so. The lock goes with the process, however it ends.
    pub fn open_owned(dir: &Path, redecode: Redecode) -> Result<Self, StoreError> {
        private::create_dir(dir)?;
        let lock = dir.join("wirehook.lock");
        private::create_file(&lock)?;
        let lock = std::fs::OpenOptions::new().write(true).open(lock)?;
        match lock.try_lock() {
            Ok(()) => Self::open_as(dir, Some(lock), redecode),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Owned(dir.to_owned())),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    fn open_as(
        dir: &Path,
        owner: Option<std::fs::File>,
        redecode: Redecode,
    ) -> Result<Self, StoreError> {
        private::create_dir(dir)?;
        let [db, _] = Self::files(dir);
        // An empty file is a new database to SQLite; the log and shared
        // memory files it creates beside it take this file's mode.
        private::create_file(&db)?;
        let mut conn = Connection::open(&db)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an acknowledged event survives power loss, not just a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement the store runs, savepoints included, stays prepared.
        conn.set_prepared_statement_cache_capacity(64);
        let upgraded = schema::prepare(&mut conn)?;
        if upgraded > 0 {
            tracing::info!(events = upgraded, "store: upgraded");
        }
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_CHECKPOINT_PAGES,
        )?;
        let checkpointer = checkpoint::Checkpointer::start(&db)?;
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (changes, written) = tokio::sync::watch::channel(0);
        let (alive, writer) = tokio::sync::watch::channel(());
        std::thread::Builder::new()
            .name("wirehook-store".into())
            .spawn(move || {
                let wrote = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    writer::write_loop(&mut conn, &inbox, writer::LINGER, &changes)
                }));
                if wrote.is_err() {
                    tracing::error!("store: the writer thread panicked; nothing more is written");
                }
                // Ends every job still waiting, and tells `writer_gone`.
                drop((inbox, alive));
            })?;
        Ok(Self {
            jobs,
            responses: Arc::default(),
            seen: Arc::default(),
            kv_totals: Arc::default(),
            writer,
            written,
            redecode,
            _owner: owner,
            _checkpointer: checkpointer,
        })
    }

    /// Resolves once the writer thread has ended (it ends early only by
    /// panicking): from then on every operation fails with
    /// [`StoreError::Closed`].
    pub fn writer_gone(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut writer = self.writer.clone();
        async move { while writer.changed().await.is_ok() {} }
    }

    /// How SQLite runs the listing of `filter`, one step of `EXPLAIN
    /// QUERY PLAN` a line: what the benchmark and the tests read to see
    /// that a listing walks an index.
    pub async fn query_plan(&self, filter: Filter) -> Result<Vec<String>, StoreError> {
        self.run(Commit::Relaxed, move |conn| search::plan(conn, &filter))
            .await
    }

    /// Runs `work` on the writer thread and waits for its batch to commit.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        commit: Commit,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.run_undoable(commit, move |conn| work(conn).map(|done| (done, None)))
            .await
    }

    /// As [`Self::run`], for work that also changes state outside the
    /// database: its [`Undo`] runs if the batch does not commit.
    pub(super) async fn run_undoable<R: Send + 'static>(
        &self,
        commit: Commit,
        work: impl FnOnce(&Connection) -> Result<(R, Option<Undo>), StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |conn: &Connection| {
            let (result, undo) = match work(conn) {
                Ok((done, undo)) => (Ok(done), undo),
                Err(e) => (Err(e), None),
            };
            let ok = result.is_ok();
            let note: Note = Box::new(move |committed| {
                let result = match committed {
                    Ok(()) => result,
                    Err(reason) => {
                        if let Some(undo) = undo {
                            undo();
                        }
                        Err(StoreError::Commit(reason))
                    }
                };
                let _ = reply.send(result);
            });
            (ok, note)
        });
        self.jobs
            .send(Job { commit, work })
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the job never ran (no transaction).
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Puts back, on the writer thread, what a job changed in memory, when
/// the batch it ran in does not commit.
pub(super) type Undo = Box<dyn FnOnce() + Send>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend(Box::new(e))
    }
}

#[async_trait::async_trait]
impl Queue for SqliteStore {
    async fn enqueue_traced(
        &self,
        intake: Intake,
        events: Vec<Event>,
        trace: Option<String>,
        now: UnixMs,
        dedup_since: UnixMs,
    ) -> Result<Vec<Admission>, StoreError> {
        let (now_ms, dedup_since_ms) = (now.0, dedup_since.0);
        let status = match intake {
            Intake::Queue => Status::Queued,
            Intake::Claim => Status::Running,
        };
        let events: Vec<EncodedEvent> = events
            .into_iter()
            .map(|event| EncodedEvent {
                trace: trace.clone(),
                ..EncodedEvent::from(event)
            })
            .collect();
        let seen = self.seen.clone();
        self.run_undoable(Commit::Durable, move |conn| {
            let mut guard = seen.lock().expect("dedup window poisoned");
            let window = match &mut *guard {
                Some(window) => window,
                empty => empty.insert(seen::Seen::rebuild(conn, dedup_since_ms)?),
            };
            let mut changes = Vec::new();
            let mut admissions = Vec::with_capacity(events.len());
            let mut admit = || -> Result<(), StoreError> {
                let mut inserts = Inserts::prepare(conn)?;
                for event in &events {
                    let mark = seen::mark(&event.route, &event.delivery_id);
                    admissions.push(
                        match window.admit(mark, event.received_at_ms, dedup_since_ms) {
                            None => Admission::Duplicate,
                            Some(change) => {
                                changes.push(change);
                                Admission::Queued(
                                    inserts.insert(event, status, None, None, now_ms)?,
                                )
                            }
                        },
                    );
                }
                Ok(())
            };
            if let Err(e) = admit() {
                // The job's savepoint is rolled back: so are its marks.
                window.undo(changes);
                return Err(e);
            }
            drop(guard);
            let undo: Undo = Box::new(move || {
                if let Some(window) = &mut *seen.lock().expect("dedup window poisoned") {
                    window.undo(changes);
                }
            });
            Ok((admissions, Some(undo)))
        })
        .await
    }

    async fn claim(
        &self,
        now: UnixMs,
        limit: usize,
        routes: Option<Vec<String>>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now_ms = now.0;
        let routes = routes_param(routes);
        let redecode = self.redecode;
        self.run(Commit::Relaxed, move |conn| {
            type Row = (i64, u32, Option<String>, Result<Event, StoreError>);
            let rows: Vec<Row> = conn
                .prepare_cached(CLAIM)?
                .query_map(params![now_ms as i64, limit as i64, routes], |row| {
                    Ok((
                        row.get("id")?,
                        row.get("attempts")?,
                        row.get("trace_context")?,
                        row_event(row, redecode)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let mut claimed = Vec::with_capacity(rows.len());
            for (id, attempt, trace, event) in rows {
                match event {
                    Ok(event) => claimed.push(Claimed {
                        id,
                        attempt,
                        event,
                        trace,
                    }),
                    // Left queued, it would be claimed first again and fail
                    // every claim after it: it goes to the dead letters,
                    // where `wirehook dead-letters` shows why.
                    Err(unreadable) => {
                        tracing::error!(id, "dead letter: {unreadable}");
                        conn.prepare_cached(
                            "UPDATE events SET status = ?2, last_error = ?3,
                                               next_attempt_at_ms = NULL, updated_at_ms = ?4
                             WHERE id = ?1",
                        )?
                        .execute(params![
                            id,
                            Status::Dead.as_str(),
                            unreadable.to_string(),
                            now_ms as i64
                        ])?;
                    }
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn finish_attempts(
        &self,
        outcomes: Vec<Finished>,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        let now_ms = now.0;
        self.run(Commit::Relaxed, move |conn| {
            for finished in outcomes {
                attempts::record(conn, &finished, now)?;
                let Finished {
                    id,
                    outcome,
                    duration_us,
                    ..
                } = finished;
                let (status, error, next) = match outcome {
                    Outcome::Wait => {
                        conn.prepare_cached(
                            "UPDATE events SET status = 'queued', attempts = max(attempts - 1, 0),
                                               next_attempt_at_ms = ?2
                             WHERE id = ?1",
                        )?
                        .execute(params![id, now_ms as i64])?;
                        continue;
                    }
                    Outcome::Delivered => (Status::Delivered, None, None),
                    Outcome::Retry { error, at } => {
                        (Status::Queued, Some(error), Some(at.as_i64()))
                    }
                    Outcome::Dead { error } => (Status::Dead, Some(error), None),
                };
                conn.prepare_cached(
                    "UPDATE events SET status = ?2, last_error = COALESCE(?3, last_error),
                                       next_attempt_at_ms = ?4, updated_at_ms = ?5,
                                       duration_us = COALESCE(?6, duration_us)
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    status.as_str(),
                    error,
                    next,
                    now_ms as i64,
                    duration_us.map(|us| us as i64),
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn next_due(&self, routes: Option<Vec<String>>) -> Result<Option<UnixMs>, StoreError> {
        let routes = routes_param(routes);
        self.run(Commit::Relaxed, move |conn| {
            let due: Option<i64> = conn
                .prepare_cached(NEXT_DUE)?
                .query_row([routes], |row| row.get(0))?;
            Ok(due.map(UnixMs::from_i64))
        })
        .await
    }

    async fn waiting(&self, routes: Vec<String>) -> Result<Vec<(String, u64)>, StoreError> {
        let routes = routes_param(Some(routes));
        self.run(Commit::Relaxed, move |conn| {
            let waiting = conn
                .prepare_cached(
                    "SELECT route, COUNT(*) FROM events WHERE status = 'queued'
                     AND route NOT IN (SELECT value FROM json_each(?1))
                     GROUP BY route ORDER BY route",
                )?
                .query_map([routes], |row| {
                    Ok((row.get(0)?, row.get::<_, i64>(1)?.max(0) as u64))
                })?
                .collect::<Result<_, _>>()?;
            Ok(waiting)
        })
        .await
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        self.run(Commit::Relaxed, |conn| {
            let depth: i64 = conn
                .prepare_cached(PENDING)?
                .query_row([], |row| row.get(0))?;
            Ok(depth as u64)
        })
        .await
    }

    async fn recover(&self, now: UnixMs) -> Result<u64, StoreError> {
        self.run(Commit::Durable, move |conn| {
            let n = conn.execute(
                "UPDATE events SET status = 'queued', next_attempt_at_ms = ?1, updated_at_ms = ?1
                 WHERE status = 'running'",
                [now.as_i64()],
            )?;
            Ok(n as u64)
        })
        .await
    }

    fn gone(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(self.writer_gone())
    }
}

#[async_trait::async_trait]
impl Admin for SqliteStore {
    async fn replay(&self, ids: Vec<i64>, now: UnixMs) -> Result<Vec<i64>, StoreError> {
        let now_ms = now.0;
        self.run(Commit::Durable, move |conn| {
            let mut found = Vec::new();
            for id in ids {
                let n = conn
                    .prepare_cached(
                        "UPDATE events SET status = 'queued', attempts = 0, next_attempt_at_ms = ?2,
                                           updated_at_ms = ?2
                         WHERE id = ?1 AND status != 'running'",
                    )?
                    .execute(params![id, now_ms as i64])?;
                if n > 0 {
                    found.push(id);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn purge_dead(&self, ids: Vec<i64>) -> Result<u64, StoreError> {
        // Bounded transactions: the daemon's writer waits on the lock for
        // at most its busy timeout, whatever the number of dead letters.
        let mut purged = 0;
        if ids.is_empty() {
            loop {
                let n = self
                    .run(Commit::Durable, |conn| {
                        purge_where(conn, "status = 'dead' ORDER BY id LIMIT ?1", PURGE_BATCH)
                    })
                    .await?;
                purged += n;
                if n < PURGE_BATCH as u64 {
                    return Ok(purged);
                }
            }
        }
        for chunk in ids.chunks(PURGE_BATCH) {
            let chunk = serde_json::to_string(chunk).expect("ids serialize");
            purged += self
                .run(Commit::Durable, move |conn| {
                    purge_where(
                        conn,
                        "status = 'dead' AND id IN (SELECT value FROM json_each(?1))",
                        chunk,
                    )
                })
                .await?;
        }
        Ok(purged)
    }

    async fn activity(&self, since: UnixMs) -> Result<Vec<Activity>, StoreError> {
        self.run(Commit::Relaxed, move |conn| {
            // Ids follow arrival: walking them down from the newest stops
            // at the window's start, with no index on the time.
            let mut statement = conn.prepare_cached(
                "SELECT route, status, received_at_ms, duration_us FROM events ORDER BY id DESC",
            )?;
            let mut rows = statement.query([])?;
            let mut found = Vec::new();
            while let Some(row) = rows.next()? {
                let received_at_ms = row.get::<_, i64>(2)? as u64;
                if received_at_ms < since.0 || found.len() == ACTIVITY_ROWS {
                    break;
                }
                let status: String = row.get(1)?;
                found.push(Activity {
                    route: row.get(0)?,
                    status: Status::parse(&status).unwrap_or(Status::Queued),
                    received_at_ms,
                    duration_us: row.get::<_, Option<i64>>(3)?.map(|us| us as u64),
                });
            }
            Ok(found)
        })
        .await
    }

    async fn prune(
        &self,
        finished_before: UnixMs,
        dedup_before: UnixMs,
    ) -> Result<u64, StoreError> {
        let (finished_before_ms, dedup_before_ms) = (finished_before.0, dedup_before.0);
        let seen = self.seen.clone();
        self.run(Commit::Relaxed, move |conn| {
            // Delivered events whose ids' window is still open (a retention
            // shorter than the window) leave their marks behind.
            conn.prepare_cached(&format!(
                "{KEEP_MARKS} WHERE status = 'delivered' AND updated_at_ms < ?1
                 AND received_at_ms >= ?2 {KEEP_LATEST}"
            ))?
            .execute([finished_before_ms as i64, dedup_before_ms as i64])?;
            let events = conn.execute(
                "DELETE FROM events WHERE status IN ('delivered', 'responded', 'failed')
                 AND updated_at_ms < ?1",
                [finished_before_ms as i64],
            )?;
            conn.execute(
                "DELETE FROM seen WHERE seen_at_ms < ?1",
                [dedup_before_ms as i64],
            )?;
            if let Some(window) = &mut *seen.lock().expect("dedup window poisoned") {
                window.forget_before(dedup_before_ms);
            }
            Ok(events as u64)
        })
        .await
    }
}

#[async_trait::async_trait]
impl DeliveryLog for SqliteStore {
    async fn log_response(&self, response: Response, now: UnixMs) -> Result<(), StoreError> {
        self.append_response(response, now.0)
    }

    async fn list(&self, filter: Filter) -> Result<Vec<Record>, StoreError> {
        self.run(Commit::Relaxed, move |conn| {
            let (sql, params) = search::list_sql(&filter);
            let records = conn
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(params), row_record)?
                .collect::<Result<_, _>>()?;
            Ok(records)
        })
        .await
    }

    async fn get(&self, id: i64) -> Result<Option<(Record, Event)>, StoreError> {
        let redecode = self.redecode;
        self.run(Commit::Relaxed, move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT events.*, b.payload, b.raw_json
                     FROM events LEFT JOIN event_bodies AS b USING (id) WHERE id = ?1",
                )?
                .query_row([id], |row| {
                    Ok((row_record(row)?, row_event(row, redecode)?))
                })
                .optional()?;
            found
                .map(|(record, event)| Ok((record, event?)))
                .transpose()
        })
        .await
    }

    async fn attempts(&self, id: i64) -> Result<Vec<Attempt>, StoreError> {
        self.run(Commit::Relaxed, move |conn| attempts::read(conn, id))
            .await
    }

    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.written.clone())
    }
}

/// Dead letters one transaction of a purge deletes at most.
const PURGE_BATCH: usize = 500;

/// Deletes the events `pick` (a clause over `events` binding `?1` to
/// `bound`) selects, keeping their dedup marks: the window may still be
/// open for a purged event's id, and prune drops the mark when it closes.
fn purge_where(
    conn: &Connection,
    pick: &str,
    bound: impl rusqlite::ToSql,
) -> Result<u64, StoreError> {
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS purging (id INTEGER PRIMARY KEY)",
        [],
    )?;
    conn.execute("DELETE FROM temp.purging", [])?;
    conn.prepare_cached(&format!(
        "INSERT INTO temp.purging SELECT id FROM events WHERE {pick}"
    ))?
    .execute([bound])?;
    conn.prepare_cached(&format!(
        "{KEEP_MARKS} WHERE id IN (SELECT id FROM temp.purging) {KEEP_LATEST}"
    ))?
    .execute([])?;
    let n = conn
        .prepare_cached("DELETE FROM events WHERE id IN (SELECT id FROM temp.purging)")?
        .execute([])?;
    Ok(n as u64)
}

/// Copies the dedup marks of the events a `WHERE` clause picks into the
/// `seen` table, where the window's rebuild finds them once the events
/// are deleted; followed by [`KEEP_LATEST`].
const KEEP_MARKS: &str = "INSERT INTO seen (route, delivery_id, seen_at_ms)
SELECT route, delivery_id, received_at_ms FROM events";

/// An id marked already keeps the later of its two times.
const KEEP_LATEST: &str = "ON CONFLICT (route, delivery_id)
DO UPDATE SET seen_at_ms = max(seen_at_ms, excluded.seen_at_ms)";
