//! The store's tables, and the one-time upgrade of a database an earlier
//! wirehook wrote. `PRAGMA user_version` says which layout a file has.
//!
//! An event's row holds what it is found and scheduled by; its body (the
//! verified JSON it came from) sits in a table of its own, written once.
//! Recording an outcome then rewrites a row of a hundred bytes rather than
//! one of a kilobyte, and the raw body is stored as the provider sent it,
//! not escaped inside another document. The payload is decoded from it
//! again when the event is read; bodies written before version 3 keep the
//! payload they were stored with, which is read instead.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

/// The layout [`TABLES`] describes. 0 is a new file or the layout before
/// versions were recorded, which kept the whole event as one JSON
/// document in `events.event`; 2 required a payload in every body; 3
/// had no search index, which a wirehook that knows none would let fall
/// behind.
const VERSION: i64 = 4;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL,
    route TEXT NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    received_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    next_attempt_at_ms INTEGER,
    reply TEXT,
    duration_us INTEGER,
    -- The W3C traceparent of the event's admission, when it was traced.
    trace_context TEXT
);
-- One per event, under the event's id.
CREATE TABLE IF NOT EXISTS event_bodies (
    id INTEGER PRIMARY KEY,
    payload TEXT,
    raw_json TEXT NOT NULL
);
-- Whoever deletes an event, its body goes with it.
CREATE TRIGGER IF NOT EXISTS event_bodies_follow AFTER DELETE ON events
BEGIN
    DELETE FROM event_bodies WHERE id = old.id;
END;
-- Only events waiting or being delivered: the delivery log's finished
-- rows, most rows by far, cost no index upkeep. The earlier full index
-- and the unused one by route go.
DROP INDEX IF EXISTS events_due;
DROP INDEX IF EXISTS events_route;
CREATE INDEX IF NOT EXISTS events_pending ON events (status, next_attempt_at_ms, id)
    WHERE status = 'queued' OR status = 'running';
-- Dead letters, newest first, without walking the delivered rows; the
-- few of them cost the writes of the rest nothing.
CREATE INDEX IF NOT EXISTS events_dead ON events (id) WHERE status = 'dead';
-- Failed respond-log rows are as few; delivered and responded ones are
-- most rows, found soon enough walking the primary key.
CREATE INDEX IF NOT EXISTS events_failed ON events (id) WHERE status = 'failed';
-- A route's listing, newest first: a route never changes, so the index
-- costs one entry per event, written with it.
CREATE INDEX IF NOT EXISTS events_by_route ON events (route, id);
CREATE TABLE IF NOT EXISTS seen (
    route TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (route, delivery_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_age ON seen (seen_at_ms);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
";

/// Moves the bodies out of the one-document layout: the payload and the
/// raw JSON are taken out of each document (a row whose document is not
/// JSON keeps it whole as its payload, so that reading it still reports
/// it corrupt), then the old column goes.
const FROM_ONE_DOCUMENT: &str = "
INSERT INTO event_bodies (id, payload, raw_json)
SELECT id,
       CASE WHEN json_valid(event) THEN coalesce(event -> '$.payload', event) ELSE event END,
       CASE WHEN json_valid(event) THEN coalesce(event ->> '$.raw_json', '') ELSE '' END
FROM events;
ALTER TABLE events DROP COLUMN event;
";

/// Lets bodies go without a payload. SQLite cannot drop a `NOT NULL`, so
/// the table is copied; the trigger that names it goes first and comes
/// back with [`TABLES`].
const OPTIONAL_PAYLOAD: &str = "
DROP TRIGGER IF EXISTS event_bodies_follow;
CREATE TABLE event_bodies_optional (
    id INTEGER PRIMARY KEY,
    payload TEXT,
    raw_json TEXT NOT NULL
);
INSERT INTO event_bodies_optional (id, payload, raw_json)
SELECT id, payload, raw_json FROM event_bodies;
DROP TABLE event_bodies;
ALTER TABLE event_bodies_optional RENAME TO event_bodies;
";

/// Brings the file to [`VERSION`], in one transaction: a failed upgrade
/// leaves the file as it was. Returns how many events were upgraded. A
/// file a newer wirehook laid out is left alone.
pub(super) fn prepare(conn: &mut Connection) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > VERSION {
        return Err(StoreError::NewerLayout {
            found: version,
            known: VERSION,
        });
    }
    let index = super::search::index(&tx)?;
    if index == super::search::Index::Outdated {
        tracing::info!("store: building the search index again in its current form");
        tx.execute_batch(super::search::DROP)?;
    }
    // Creates what is missing; an existing `events` keeps its columns.
    tx.execute_batch(TABLES)?;
    let mut upgraded = 0;
    if version < VERSION && has_column(&tx, "events", "event")? {
        let events: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        // A large file takes a while; say why the start waits.
        tracing::info!(events, "store: upgrading to the current layout");
        tx.execute_batch(FROM_ONE_DOCUMENT)?;
        upgraded = events as u64;
    }
    if version < VERSION && payload_required(&tx)? {
        let events: i64 =
            tx.query_row("SELECT COUNT(*) FROM event_bodies", [], |row| row.get(0))?;
        tracing::info!(events, "store: upgrading to the current layout");
        tx.execute_batch(OPTIONAL_PAYLOAD)?;
        tx.execute_batch(TABLES)?;
        upgraded = upgraded.max(events as u64);
    }
    tx.execute_batch(super::search::TABLES)?;
    tx.execute_batch(super::attempts::TABLES)?;
    if index != super::search::Index::Current {
        tx.execute_batch(super::search::SETTINGS)?;
        tx.execute_batch(super::search::BACKFILL)?;
    }
    // A nullable column any layout takes: a wirehook without it reads
    // and writes the file as before, so the version stays.
    if !has_column(&tx, "events", "trace_context")? {
        tx.execute_batch("ALTER TABLE events ADD COLUMN trace_context TEXT")?;
    }
    // Written only when it changes: readers such as `wirehook events` open
    // the store beside the daemon and should not need its write lock.
    if version != VERSION {
        tx.pragma_update(None, "user_version", VERSION)?;
    }
    tx.commit()?;
    Ok(upgraded)
}

/// Whether `event_bodies` is version 2's, which requires a payload.
fn payload_required(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT \"notnull\" FROM pragma_table_info('event_bodies') WHERE name = 'payload'",
        [],
        |row| row.get(0),
    )
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Contact, Event, FlowEvent, FlowStage, Payload, Source};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Admin, DeliveryLog, Intake, Queue, UnixMs};

    /// The `events` table before layouts had versions.
    const ONE_DOCUMENT_EVENTS: &str = "
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            delivery_id TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL,
            kind TEXT NOT NULL, event TEXT NOT NULL, status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
            received_at_ms INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
            next_attempt_at_ms INTEGER, reply TEXT, duration_us INTEGER
        );";

    fn flow_call(delivery_id: &str) -> Event {
        Event {
            source: Source {
                provider: "goflow".into(),
                route: "orders".into(),
                delivery_id: delivery_id.into(),
                received_at_ms: 7,
                attempt: 1,
            },
            kind: "call_webhook".into(),
            payload: Payload::FlowCall(FlowEvent {
                flow_id: Some("f-1".into()),
                flow_name: None,
                stage: FlowStage::Started,
                contact: Contact {
                    id: Some("c-1".into()),
                    phone: Some("+1 206 555 1212".into()),
                    name: Some("Ben \"B\" Haggerty".into()),
                },
                variables: vec![("order".into(), "CU001".into())],
            }),
            raw_json: r#"{"contact":{"name":"Ben \"B\" Haggerty"},"é":"\u00e9"}"#.into(),
        }
    }

    /// A file as the one-document layout left it: a queued event, a
    /// delivered one whose payload is `Other` (a bare JSON string), and
    /// one whose document is not JSON.
    fn one_document_file(dir: &std::path::Path) {
        let conn = Connection::open(dir.join("wirehook.db")).unwrap();
        conn.execute_batch(ONE_DOCUMENT_EVENTS).unwrap();
        let other = Event {
            payload: Payload::Other,
            ..flow_call("d-2")
        };
        let rows = [
            (
                "d-1",
                serde_json::to_string(&flow_call("d-1")).unwrap(),
                "queued",
            ),
            ("d-2", serde_json::to_string(&other).unwrap(), "delivered"),
            ("d-3", "{not json".to_owned(), "delivered"),
        ];
        for (delivery_id, event, status) in rows {
            conn.execute(
                "INSERT INTO events (delivery_id, route, provider, kind, event, status,
                                     received_at_ms, updated_at_ms, next_attempt_at_ms)
                 VALUES (?1, 'orders', 'goflow', 'call_webhook', ?2, ?3, 7, 7, 7)",
                (delivery_id, event, status),
            )
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_one_document_file_is_upgraded_and_reads_as_before() {
        let dir = tempfile::tempdir().unwrap();
        one_document_file(dir.path());
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();

        let (_, queued) = store.get(1).await.unwrap().unwrap();
        assert_eq!(queued, flow_call("d-1"));
        let (_, other) = store.get(2).await.unwrap().unwrap();
        assert_eq!(other.payload, Payload::Other);
        assert_eq!(other.raw_json, flow_call("d-2").raw_json);
        assert!(matches!(
            store.get(3).await,
            Err(StoreError::Corrupt { id: 3, .. })
        ));
        // The upgraded event is delivered like any other, and new events
        // are numbered after the old ones.
        let claimed = store.claim(UnixMs(7), 10, None).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].event, flow_call("d-1"));
        let admitted = store
            .enqueue(Intake::Queue, vec![flow_call("d-4")], UnixMs(8), UnixMs(0))
            .await
            .unwrap();
        assert_eq!(admitted, vec![crate::store::Admission::Queued(4)]);
        drop(store);

        let conn = Connection::open(dir.path().join("wirehook.db")).unwrap();
        assert!(!has_column(&conn, "events", "event").unwrap());
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
    }

    /// A file as version 2 left it: every body with its payload, which
    /// the column required.
    fn version_2_file(dir: &std::path::Path) {
        let conn = Connection::open(dir.join("wirehook.db")).unwrap();
        let v2 = TABLES.replace(
            "payload TEXT,\n    raw_json",
            "payload TEXT NOT NULL,\n    raw_json",
        );
        assert_ne!(v2, TABLES, "version 2's bodies required a payload");
        conn.execute_batch(&v2).unwrap();
        conn.execute(
            "INSERT INTO events (delivery_id, route, provider, kind, status,
                                 received_at_ms, updated_at_ms, next_attempt_at_ms)
             VALUES ('d-1', 'orders', 'goflow', 'call_webhook', 'queued', 7, 7, 7)",
            [],
        )
        .unwrap();
        let event = flow_call("d-1");
        conn.execute(
            "INSERT INTO event_bodies (id, payload, raw_json) VALUES (1, ?1, ?2)",
            (
                serde_json::to_string(&event.payload).unwrap(),
                &event.raw_json,
            ),
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
    }

    #[tokio::test]
    async fn a_version_2_file_keeps_its_payloads_and_stores_new_bodies_without() {
        let dir = tempfile::tempdir().unwrap();
        version_2_file(dir.path());
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();

        // The stored payload is read, not decoded from the raw JSON (from
        // which this hand-made one would not follow).
        let (_, old) = store.get(1).await.unwrap().unwrap();
        assert_eq!(old, flow_call("d-1"));
        let new = crate::store::tests::event("orders", "d-2");
        store
            .enqueue(Intake::Queue, vec![new.clone()], UnixMs(8), UnixMs(0))
            .await
            .unwrap();
        let (_, read) = store.get(2).await.unwrap().unwrap();
        assert_eq!(read.payload, new.payload);
        assert_eq!(read.raw_json, new.raw_json);
        drop(store);

        let conn = Connection::open(dir.path().join("wirehook.db")).unwrap();
        let payloads: Vec<Option<String>> = conn
            .prepare("SELECT payload FROM event_bodies ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(payloads[0].is_some());
        assert_eq!(payloads[1], None);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        // The trigger that was dropped for the copy is back.
        conn.execute("DELETE FROM events WHERE id = 1", []).unwrap();
        let bodies: i64 = conn
            .query_row("SELECT COUNT(*) FROM event_bodies", [], |row| row.get(0))
            .unwrap();
        assert_eq!(bodies, 1);
    }

    #[tokio::test]
    async fn a_deleted_event_takes_its_body_along() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
        store
            .enqueue(
                Intake::Queue,
                vec![flow_call("d-1"), flow_call("d-2")],
                UnixMs(8),
                UnixMs(0),
            )
            .await
            .unwrap();
        // Finished long ago, so retention prunes both.
        let claimed = store.claim(UnixMs(8), 10, None).await.unwrap();
        let delivered = claimed
            .iter()
            .map(|c| (c.id, crate::store::Outcome::Delivered))
            .collect();
        store.finish(delivered, UnixMs(8)).await.unwrap();
        assert_eq!(store.prune(UnixMs(9), UnixMs(0)).await.unwrap(), 2);
        drop(store);
        let conn = Connection::open(dir.path().join("wirehook.db")).unwrap();
        let bodies: i64 = conn
            .query_row("SELECT COUNT(*) FROM event_bodies", [], |row| row.get(0))
            .unwrap();
        assert_eq!(bodies, 0);
    }

    #[test]
    fn a_file_from_a_newer_wirehook_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wirehook.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(dir.path(), crate::providers::redecode),
            Err(StoreError::NewerLayout { found, known: VERSION }) if found == VERSION + 1
        ));
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, VERSION + 1);
    }
}
