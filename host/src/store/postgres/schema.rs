//! The PostgreSQL schema and its versioned migrations, applied at start
//! in one transaction under an advisory lock, so that instances starting
//! together apply each migration once and never see half of one.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// The advisory lock key migrations run under ("wirehook" in ASCII).
const MIGRATION_LOCK: i64 = 0x7769_7265_686f_6f6b;

/// Each migration, applied in order; the schema's version is how many
/// have been applied.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE events (
    id                 BIGSERIAL PRIMARY KEY,
    delivery_id        TEXT NOT NULL,
    route              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    kind               TEXT NOT NULL,
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    received_at_ms     BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    next_attempt_at_ms BIGINT,
    lease_until_ms     BIGINT,
    holder             TEXT,
    reply              TEXT,
    duration_us        BIGINT,
    raw_json           TEXT NOT NULL
);
CREATE INDEX events_due ON events (next_attempt_at_ms, id) WHERE status = 'queued';
CREATE INDEX events_leased ON events (lease_until_ms) WHERE status = 'running';
CREATE INDEX events_finished ON events (updated_at_ms)
    WHERE status IN ('delivered', 'responded', 'failed');
CREATE INDEX events_status ON events (status, id);
CREATE TABLE seen (
    route       TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (route, delivery_id)
);
CREATE INDEX seen_age ON seen (seen_at_ms);
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT COLLATE \"C\" NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (namespace, key)
);
",
    "
-- The console's charts: the events of the last hour, by time.
CREATE INDEX events_received ON events (received_at_ms);
",
    "
-- The W3C traceparent of the event's admission, when it was traced.
ALTER TABLE events ADD COLUMN trace_context TEXT;
",
    "
-- The delivery log's search (see search.rs) and a route's listing,
-- newest first. Bodies past 64 KiB are searched in their first 64 KiB: a
-- tsvector holds at most 1 MiB, and an event must never fail to store
-- for its words.
ALTER TABLE events ADD COLUMN search tsvector GENERATED ALWAYS AS
    (to_tsvector('simple'::regconfig, delivery_id || ' ' || left(raw_json, 65536))) STORED;
CREATE INDEX events_search ON events USING GIN (search);
CREATE INDEX events_route ON events (route, id);
",
    "
-- Each queued event's attempts: when, how, and which plugin failed it.
CREATE TABLE attempts (
    event_id       BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    number         INTEGER NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT NOT NULL,
    outcome        TEXT NOT NULL,
    error          TEXT,
    plugin         TEXT
);
CREATE INDEX attempts_event ON attempts (event_id);
",
];

/// The schema version this wirehook writes.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`]; refuses a newer one.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS wirehook_schema (version BIGINT NOT NULL)")
        .await
        .map_err(pg_error)?;
    let found: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM wirehook_schema", &[])
        .await
        .map_err(pg_error)?
        .get(0);
    if found > VERSION {
        return Err(StoreError::NewerLayout {
            found,
            known: VERSION,
        });
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(migration).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO wirehook_schema (version) VALUES ($1)",
            &[&(version as i64 + 1)],
        )
        .await
        .map_err(pg_error)?;
    }
    tx.commit().await.map_err(pg_error)?;
    if found < VERSION {
        tracing::info!(
            from = found,
            to = VERSION,
            "store: database schema migrated"
        );
    }
    Ok(())
}
