//! How an event is laid out in the store's rows: reading a record and
//! an event from a row, and the statements that insert them.

use rusqlite::{CachedStatement, Connection, params};

use crate::event::{Event, Source};
use crate::store::{Record, Redecode, Status, StoreError};

pub(super) fn row_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let status: String = row.get("status")?;
    Ok(Record {
        id: row.get("id")?,
        delivery_id: row.get("delivery_id")?,
        route: row.get("route")?,
        provider: row.get("provider")?,
        kind: row.get("kind")?,
        status: Status::parse(&status).unwrap_or(Status::Queued),
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        received_at_ms: row.get::<_, i64>("received_at_ms")? as u64,
        updated_at_ms: row.get::<_, i64>("updated_at_ms")? as u64,
        next_attempt_at_ms: row
            .get::<_, Option<i64>>("next_attempt_at_ms")?
            .map(|ms| ms as u64),
        reply: row.get("reply")?,
        duration_us: row
            .get::<_, Option<i64>>("duration_us")?
            .map(|us| us as u64),
    })
}

/// An event from its row (`provider`, `route`, `delivery_id`,
/// `received_at_ms`, `attempts`, `kind`) and its body (`raw_json`, and
/// `payload` in rows written before bodies kept the raw JSON alone; NULL
/// when a body is missing).
pub(super) fn row_event(
    row: &rusqlite::Row<'_>,
    redecode: Redecode,
) -> rusqlite::Result<Result<Event, StoreError>> {
    let id: i64 = row.get("id")?;
    let provider: String = row.get("provider")?;
    let kind: String = row.get("kind")?;
    let Some(raw_json) = row.get::<_, Option<String>>("raw_json")? else {
        return Ok(Err(StoreError::Corrupt {
            id,
            reason: "its body is missing".into(),
        }));
    };
    let payload = match row.get::<_, Option<String>>("payload")? {
        Some(payload) => serde_json::from_str(&payload).map_err(|e| e.to_string()),
        None => redecode(&provider, &kind, &raw_json),
    };
    let payload = match payload {
        Ok(payload) => payload,
        Err(reason) => return Ok(Err(StoreError::Corrupt { id, reason })),
    };
    Ok(Ok(Event {
        source: Source {
            provider,
            route: row.get("route")?,
            delivery_id: row.get("delivery_id")?,
            received_at_ms: row.get::<_, i64>("received_at_ms")? as u64,
            attempt: row.get::<_, u32>("attempts")?.max(1),
        },
        kind,
        payload,
        raw_json,
    }))
}

/// An event as its rows hold it: the columns it is found by and the raw
/// JSON, from which reading it decodes the payload again (see
/// [`crate::providers::Decode`]): storing the payload too would write
/// each event's content twice. Callers take it out of the event before
/// handing it to the writer, so that the one thread every commit waits on
/// does not free the rest.
pub(super) struct EncodedEvent {
    pub(super) delivery_id: String,
    pub(super) route: String,
    pub(super) provider: String,
    pub(super) kind: String,
    pub(super) received_at_ms: u64,
    pub(super) raw_json: String,
    /// The W3C `traceparent` its attempts join.
    pub(super) trace: Option<String>,
}

impl From<Event> for EncodedEvent {
    fn from(event: Event) -> Self {
        Self {
            trace: None,
            raw_json: event.raw_json,
            delivery_id: event.source.delivery_id,
            route: event.source.route,
            provider: event.source.provider,
            kind: event.kind,
            received_at_ms: event.source.received_at_ms,
        }
    }
}

/// A respond route's answer, logged in the same row as its event.
pub(super) struct Answered<'a> {
    pub(super) reply: Option<&'a str>,
    pub(super) duration_us: u64,
}

/// The statements that store an event, its row, its body's and its
/// search index entry,
/// prepared once for all of a job's events: the respond log writes as many
/// as requests are answered, on the one writer thread, and a cache lookup
/// per statement hashes its text.
pub(super) struct Inserts<'c> {
    conn: &'c Connection,
    event: CachedStatement<'c>,
    body: CachedStatement<'c>,
    search: CachedStatement<'c>,
}

impl<'c> Inserts<'c> {
    pub(super) fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            conn,
            event: conn.prepare_cached(
                "INSERT INTO events (delivery_id, route, provider, kind, status, last_error,
                                     received_at_ms, updated_at_ms, next_attempt_at_ms,
                                     attempts, reply, duration_us, trace_context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?,
            body: conn.prepare_cached("INSERT INTO event_bodies (id, raw_json) VALUES (?1, ?2)")?,
            search: conn.prepare_cached(super::search::INSERT)?,
        })
    }

    /// Stores `event` and returns its id.
    pub(super) fn insert(
        &mut self,
        event: &EncodedEvent,
        status: Status,
        error: Option<&str>,
        answered: Option<Answered<'_>>,
        now_ms: u64,
    ) -> rusqlite::Result<i64> {
        let next = matches!(status, Status::Queued | Status::Running).then_some(now_ms as i64);
        let (attempts, reply, duration_us) = match answered {
            Some(a) => (1, a.reply, Some(a.duration_us as i64)),
            // Inserted running: claimed for its first attempt.
            None => (u32::from(status == Status::Running), None, None),
        };
        self.event.execute(params![
            event.delivery_id,
            event.route,
            event.provider,
            event.kind,
            status.as_str(),
            error,
            event.received_at_ms as i64,
            now_ms as i64,
            next,
            attempts,
            reply,
            duration_us,
            event.trace,
        ])?;
        let id = self.conn.last_insert_rowid();
        self.body.execute(params![id, event.raw_json])?;
        self.search
            .execute(params![id, event.delivery_id, event.raw_json])?;
        Ok(id)
    }
}
