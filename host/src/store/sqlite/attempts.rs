//! Each queued event's attempts: when each started and ended, how, and
//! which plugin failed it. Written by the transaction that records the
//! outcome, deleted with the event by a trigger.

use rusqlite::{Connection, params};

use crate::store::{Attempt, Finished, StoreError, UnixMs};

/// The history's table, its index by event and the trigger that deletes
/// it with its event.
pub(super) const TABLES: &str = "
CREATE TABLE IF NOT EXISTS attempts (
    event_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    plugin TEXT
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id);
CREATE TRIGGER IF NOT EXISTS attempts_follow AFTER DELETE ON events
BEGIN
    DELETE FROM attempts WHERE event_id = old.id;
END;
";

/// Records `finished` as its event's latest attempt, numbered as it was
/// claimed, started when the claim was made unless the caller knows.
pub(super) fn record(
    conn: &Connection,
    finished: &Finished,
    now: UnixMs,
) -> Result<(), StoreError> {
    let Some(outcome) = finished.outcome.name() else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO attempts (event_id, number, started_at_ms, finished_at_ms, outcome, error,
                               plugin)
         SELECT id, attempts, COALESCE(?2, updated_at_ms), ?3, ?4, ?5, ?6
         FROM events WHERE id = ?1 AND status = 'running'",
    )?
    .execute(params![
        finished.id,
        finished.started.map(UnixMs::as_i64),
        now.as_i64(),
        outcome,
        finished.outcome.error(),
        finished.plugin,
    ])?;
    Ok(())
}

/// The attempts of event `id`, oldest first.
pub(super) fn read(conn: &Connection, id: i64) -> Result<Vec<Attempt>, StoreError> {
    let attempts = conn
        .prepare_cached(
            "SELECT number, started_at_ms, finished_at_ms, outcome, error, plugin
             FROM attempts WHERE event_id = ?1 ORDER BY rowid",
        )?
        .query_map([id], |row| {
            Ok(Attempt {
                number: row.get(0)?,
                started_at_ms: row.get::<_, i64>(1)?.max(0) as u64,
                finished_at_ms: row.get::<_, i64>(2)?.max(0) as u64,
                outcome: row.get(3)?,
                error: row.get(4)?,
                plugin: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(attempts)
}
