//! The delivery log and administration on PostgreSQL, and the respond
//! log's writer.
//!
//! Respond routes answer whatever the database does: their rows go
//! through a bounded channel to one task that writes them in batches. A
//! row that finds the channel full, or whose batch cannot be written (the
//! database is down), is dropped, and the drop is logged with how many
//! rows it lost; the reply was sent either way.

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use super::{PostgresStore, bounded, pool_error, row_event};
use crate::event::Event;
use crate::store::{
    ACTIVITY_ROWS, Activity, Admin, Attempt, DeliveryLog, Filter, Record, Response, Status,
    StoreError, UnixMs,
};

/// Respond-log rows waiting for the writer at most.
const MAX_PENDING_RESPONSES: usize = 10_000;

/// Rows written in one transaction at most.
const RESPONSE_BATCH: usize = 256;

/// Dead letters one transaction of a purge deletes at most.
const PURGE_BATCH: i64 = 500;

/// The sending side of the respond log's writer.
pub(super) struct ResponseLog(mpsc::Sender<(Response, UnixMs)>);

impl ResponseLog {
    pub(super) fn start(pool: Pool) -> Self {
        let (rows, inbox) = mpsc::channel(MAX_PENDING_RESPONSES);
        tokio::spawn(write_responses(pool, inbox));
        Self(rows)
    }
}

async fn write_responses(pool: Pool, mut inbox: mpsc::Receiver<(Response, UnixMs)>) {
    let mut batch = Vec::with_capacity(RESPONSE_BATCH);
    while inbox.recv_many(&mut batch, RESPONSE_BATCH).await > 0 {
        let rows = batch.len();
        if let Err(e) = bounded(write_batch(&pool, &batch)).await {
            tracing::warn!(rows, "respond log: rows dropped, not written: {e}");
        }
        batch.clear();
    }
}

async fn write_batch(pool: &Pool, batch: &[(Response, UnixMs)]) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO events (delivery_id, route, provider, kind, status, attempts,
                                 last_error, received_at_ms, updated_at_ms, reply,
                                 duration_us, raw_json)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11)",
        )
        .await?;
    for (response, now) in batch {
        let status = if response.error.is_some() {
            Status::Failed
        } else {
            Status::Responded
        };
        let event = &response.event;
        tx.execute(
            &insert,
            &[
                &event.source.delivery_id,
                &event.source.route,
                &event.source.provider,
                &event.kind,
                &status.as_str(),
                &response.error,
                &UnixMs(event.source.received_at_ms).as_i64(),
                &now.as_i64(),
                &response.reply,
                &(response.duration_us as i64),
                &event.raw_json,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The columns of a [`Record`]: a listing leaves the bodies and their
/// search words in the database.
pub(super) const RECORD: &str =
    "id, delivery_id, route, provider, kind, status, attempts, last_error,
received_at_ms, updated_at_ms, next_attempt_at_ms, reply, duration_us";

fn row_record(row: &tokio_postgres::Row) -> Record {
    let status: String = row.get("status");
    Record {
        id: row.get("id"),
        delivery_id: row.get("delivery_id"),
        route: row.get("route"),
        provider: row.get("provider"),
        kind: row.get("kind"),
        status: Status::parse(&status).unwrap_or(Status::Queued),
        attempts: row.get::<_, i32>("attempts").max(0) as u32,
        last_error: row.get("last_error"),
        received_at_ms: UnixMs::from_i64(row.get("received_at_ms")).0,
        updated_at_ms: UnixMs::from_i64(row.get("updated_at_ms")).0,
        next_attempt_at_ms: row
            .get::<_, Option<i64>>("next_attempt_at_ms")
            .map(|ms| UnixMs::from_i64(ms).0),
        reply: row.get("reply"),
        duration_us: row
            .get::<_, Option<i64>>("duration_us")
            .map(|us| us.max(0) as u64),
    }
}

#[async_trait::async_trait]
impl DeliveryLog for PostgresStore {
    async fn log_response(&self, response: Response, now: UnixMs) -> Result<(), StoreError> {
        self.responses
            .0
            .try_send((response, now))
            .map_err(|_| StoreError::LogBacklog(MAX_PENDING_RESPONSES))
    }

    async fn list(&self, filter: Filter) -> Result<Vec<Record>, StoreError> {
        let (sql, params) = super::search::list_sql(&filter, RECORD);
        bounded(async {
            let client = self.client().await?;
            let rows = client.query(&sql, &super::search::refs(&params)).await?;
            Ok(rows.iter().map(row_record).collect())
        })
        .await
    }

    async fn get(&self, id: i64) -> Result<Option<(Record, Event)>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT * FROM events WHERE id = $1", &[&id])
                .await?;
            row.map(|row| Ok((row_record(&row), row_event(&row, self.redecode)?)))
                .transpose()
        })
        .await
    }

    async fn attempts(&self, id: i64) -> Result<Vec<Attempt>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT number, started_at_ms, finished_at_ms, outcome, error, plugin
                     FROM attempts WHERE event_id = $1 ORDER BY finished_at_ms, number",
                    &[&id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| Attempt {
                    number: row.get::<_, i32>(0).max(0) as u32,
                    started_at_ms: UnixMs::from_i64(row.get(1)).0,
                    finished_at_ms: UnixMs::from_i64(row.get(2)).0,
                    outcome: row.get(3),
                    error: row.get(4),
                    plugin: row.get(5),
                })
                .collect())
        })
        .await
    }
}

#[async_trait::async_trait]
impl Admin for PostgresStore {
    async fn replay(&self, ids: Vec<i64>, now: UnixMs) -> Result<Vec<i64>, StoreError> {
        let found: Vec<i64> = bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "UPDATE events SET status = 'queued', attempts = 0, next_attempt_at_ms = $2,
                                       updated_at_ms = $2, lease_until_ms = NULL, holder = NULL
                     WHERE id = ANY($1) AND status <> 'running'
                     RETURNING id",
                    &[&ids, &now.as_i64()],
                )
                .await?;
            if !rows.is_empty() {
                tx.execute("SELECT pg_notify($1, '')", &[&super::CHANNEL])
                    .await?;
            }
            tx.commit().await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
        .await?;
        Ok(ids.into_iter().filter(|id| found.contains(id)).collect())
    }

    async fn purge_dead(&self, ids: Vec<i64>) -> Result<u64, StoreError> {
        // Bounded transactions, whatever the number of dead letters; the
        // marks in `seen` stay until their window closes.
        let mut purged = 0;
        if ids.is_empty() {
            loop {
                let n = bounded(async {
                    let client = self.client().await?;
                    Ok(client
                        .execute(
                            "DELETE FROM events WHERE id IN
                             (SELECT id FROM events WHERE status = 'dead' ORDER BY id LIMIT $1)",
                            &[&PURGE_BATCH],
                        )
                        .await?)
                })
                .await?;
                purged += n;
                if n < PURGE_BATCH as u64 {
                    return Ok(purged);
                }
            }
        }
        for chunk in ids.chunks(PURGE_BATCH as usize) {
            purged += bounded(async {
                let client = self.client().await?;
                Ok(client
                    .execute(
                        "DELETE FROM events WHERE status = 'dead' AND id = ANY($1)",
                        &[&chunk],
                    )
                    .await?)
            })
            .await?;
        }
        Ok(purged)
    }

    async fn activity(&self, since: UnixMs) -> Result<Vec<Activity>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT route, status, received_at_ms, duration_us FROM events
                     WHERE received_at_ms >= $1 ORDER BY received_at_ms DESC LIMIT $2",
                    &[&since.as_i64(), &(ACTIVITY_ROWS as i64)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    let status: String = row.get(1);
                    Activity {
                        route: row.get(0),
                        status: Status::parse(&status).unwrap_or(Status::Queued),
                        received_at_ms: row.get::<_, i64>(2) as u64,
                        duration_us: row.get::<_, Option<i64>>(3).map(|us| us as u64),
                    }
                })
                .collect())
        })
        .await
    }

    async fn prune(
        &self,
        finished_before: UnixMs,
        dedup_before: UnixMs,
    ) -> Result<u64, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let events = client
                .execute(
                    "DELETE FROM events WHERE status IN ('delivered', 'responded', 'failed')
                     AND updated_at_ms < $1",
                    &[&finished_before.as_i64()],
                )
                .await?;
            client
                .execute(
                    "DELETE FROM seen WHERE seen_at_ms < $1",
                    &[&dedup_before.as_i64()],
                )
                .await?;
            Ok(events)
        })
        .await
    }
}
