//! Admission on PostgreSQL with group commit: the requests that arrive
//! while a write is in flight go into the next write together, as one
//! statement over every row of the batch. A statement on its own is a
//! transaction, so each batch is one round trip and one commit, and every
//! request is answered only after that commit (nothing acknowledged can
//! be lost: `synchronous_commit` is the server's, on by default).
//!
//! The statement marks each `(route, delivery id)` in `seen` and stores
//! the event only where it marked it, so that the dedup window holds
//! across instances. Marks are taken in key order, so that two batches
//! that share keys (the same delivery posted to two instances at once)
//! wait on each other instead of deadlocking. A key repeated within one
//! batch goes into a second statement in the same transaction, after the
//! first, so that it sees the first's mark exactly as a later request
//! would. Queued rows announce themselves with NOTIFY in the same
//! statement (PostgreSQL folds the notifications of one transaction into
//! one).
//!
//! A batch that the database refuses for one of its rows (not for being
//! unreachable) is written again request by request, so that one bad
//! request fails alone.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{CHANNEL, bounded, pool_error};
use crate::event::Event;
use crate::store::{Admission, Intake, Status, StoreError, UnixMs};

/// Rows a batch takes at most: one statement's arrays.
const MAX_ROWS: usize = 512;

/// Batches written at once: one commits while the next gathers.
const WRITERS: usize = 2;

/// Requests waiting for a writer at most; a caller waits for room.
const BACKLOG: usize = 4096;

/// See the module doc. `$1`…`$12` are one array each, an element per
/// row; `$13` is this instance's holder name, set on claimed rows (those
/// with a lease), and `$14` the channel queued rows are announced on.
const ADMIT: &str = "
WITH data AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[],
                         $6::text[], $7::text[], $8::int4[], $9::int8[], $10::int8[],
                         $11::text[], $12::text[])
        WITH ORDINALITY
        AS d(route, delivery_id, received, since, provider, kind, status, attempts, now,
             lease, raw_json, trace_context, n)
), mark AS (
    INSERT INTO seen (route, delivery_id, seen_at_ms)
    SELECT route, delivery_id, received FROM data ORDER BY route, delivery_id
    ON CONFLICT (route, delivery_id) DO UPDATE SET seen_at_ms = EXCLUDED.seen_at_ms
    WHERE seen.seen_at_ms < (SELECT since FROM data
                             WHERE data.route = EXCLUDED.route
                               AND data.delivery_id = EXCLUDED.delivery_id)
    RETURNING route, delivery_id
), stored AS (
    INSERT INTO events (delivery_id, route, provider, kind, status, attempts, received_at_ms,
                        updated_at_ms, next_attempt_at_ms, lease_until_ms, holder, raw_json,
                        trace_context)
    SELECT d.delivery_id, d.route, d.provider, d.kind, d.status, d.attempts, d.received,
           d.now, d.now, d.lease, CASE WHEN d.lease IS NOT NULL THEN $13 END, d.raw_json,
           d.trace_context
    FROM data d JOIN mark USING (route, delivery_id)
    ORDER BY d.n
    RETURNING id, route, delivery_id, status
)
SELECT id, route, delivery_id,
       CASE WHEN status = 'queued' THEN pg_notify($14, '') END IS NULL
FROM stored";

/// One request's events, waiting for a writer.
struct Request {
    rows: Vec<Row>,
    reply: oneshot::Sender<Result<Vec<Admission>, StoreError>>,
}

/// One event as admission writes it.
struct Row {
    route: String,
    delivery_id: String,
    received: i64,
    since: i64,
    provider: String,
    kind: String,
    status: &'static str,
    attempts: i32,
    now: i64,
    lease: Option<i64>,
    raw_json: String,
    /// The W3C traceparent of the admission, when it was traced.
    trace: Option<String>,
}

/// The writers and the queue of requests they take batches from; the
/// writers end with it.
pub(super) struct Admitter {
    requests: mpsc::Sender<Request>,
    writers: Vec<tokio::task::AbortHandle>,
}

impl Drop for Admitter {
    fn drop(&mut self) {
        for writer in &self.writers {
            writer.abort();
        }
    }
}

impl Admitter {
    pub(super) fn start(pool: Pool, holder: String) -> Self {
        let (requests, queue) = mpsc::channel(BACKLOG);
        let queue = Arc::new(Mutex::new(queue));
        let holder: Arc<str> = holder.into();
        let writers = (0..WRITERS)
            .map(|_| {
                tokio::spawn(write(pool.clone(), Arc::clone(&holder), Arc::clone(&queue)))
                    .abort_handle()
            })
            .collect();
        Self { requests, writers }
    }

    /// Admits `events` in the next batch; returns once it is committed.
    pub(super) async fn admit(
        &self,
        intake: Intake,
        events: Vec<Event>,
        trace: Option<String>,
        now: UnixMs,
        dedup_since: UnixMs,
        lease_until: UnixMs,
    ) -> Result<Vec<Admission>, StoreError> {
        let (status, attempts, lease) = match intake {
            Intake::Queue => (Status::Queued, 0, None),
            Intake::Claim => (Status::Running, 1, Some(lease_until.as_i64())),
        };
        let rows = events
            .into_iter()
            .map(|event| Row {
                received: UnixMs(event.source.received_at_ms).as_i64(),
                route: event.source.route,
                delivery_id: event.source.delivery_id,
                since: dedup_since.as_i64(),
                provider: event.source.provider,
                kind: event.kind,
                status: status.as_str(),
                attempts,
                now: now.as_i64(),
                lease,
                raw_json: event.raw_json,
                trace: trace.clone(),
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        bounded(async {
            self.requests
                .send(Request { rows, reply })
                .await
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
        .await
    }
}

/// Takes batches of the requests waiting and writes each in one commit.
async fn write(pool: Pool, holder: Arc<str>, queue: Arc<Mutex<mpsc::Receiver<Request>>>) {
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            let mut batch = vec![first];
            while rows < MAX_ROWS {
                match queue.try_recv() {
                    Ok(request) => {
                        rows += request.rows.len();
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        match bounded(store(&pool, &holder, &batch)).await {
            Ok(admissions) => answer(batch, admissions),
            Err(e) if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
                tracing::debug!(
                    requests = batch.len(),
                    "store: a batch of admissions was refused ({e}); writing it request by request"
                );
                for request in batch {
                    let result = bounded(store(&pool, &holder, std::slice::from_ref(&request)))
                        .await
                        .map(|mut admissions| admissions.pop().unwrap_or_default());
                    let _ = request.reply.send(result);
                }
            }
            Err(e) => {
                let mut batch = batch.into_iter();
                let first = batch.next();
                for request in batch {
                    let _ = request.reply.send(Err(copy(&e)));
                }
                if let Some(first) = first {
                    let _ = first.reply.send(Err(e));
                }
            }
        }
    }
}

/// Each request's share of a batch's admissions, in order.
fn answer(batch: Vec<Request>, admissions: Vec<Vec<Admission>>) {
    for (request, admissions) in batch.into_iter().zip(admissions) {
        let _ = request.reply.send(Ok(admissions));
    }
}

/// The error of a batch for each of its requests: unavailable stays
/// unavailable (a 503 the provider retries).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Commit(other.to_string()),
    }
}

/// Writes `batch` in one transaction; returns each request's admissions.
async fn store(
    pool: &Pool,
    holder: &str,
    batch: &[Request],
) -> Result<Vec<Vec<Admission>>, StoreError> {
    let rows: Vec<&Row> = batch.iter().flat_map(|r| &r.rows).collect();
    let waves = waves(&rows);
    let mut ids = vec![None; rows.len()];
    let mut client = pool.get().await.map_err(pool_error)?;
    if let [wave] = waves.as_slice() {
        run(&client, holder, &rows, wave, &mut ids).await?;
    } else {
        let tx = client.transaction().await?;
        for wave in &waves {
            run(&tx, holder, &rows, wave, &mut ids).await?;
        }
        tx.commit().await?;
    }
    let mut ids = ids.into_iter();
    Ok(batch
        .iter()
        .map(|request| {
            ids.by_ref()
                .take(request.rows.len())
                .map(|id| id.map_or(Admission::Duplicate, Admission::Queued))
                .collect()
        })
        .collect())
}

/// The rows' indices in statements that each hold a key once: a key's
/// first row in the first, its second in the second, and so on.
fn waves(rows: &[&Row]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let times = seen
            .entry((row.route.as_str(), row.delivery_id.as_str()))
            .or_default();
        if waves.len() <= *times {
            waves.push(Vec::new());
        }
        waves[*times].push(i);
        *times += 1;
    }
    waves
}

/// Runs [`ADMIT`] over the rows of `wave`, setting the id of each row
/// stored.
async fn run(
    client: &impl GenericClient,
    holder: &str,
    rows: &[&Row],
    wave: &[usize],
    ids: &mut [Option<i64>],
) -> Result<(), StoreError> {
    fn column<'a, T>(rows: &[&'a Row], wave: &[usize], f: impl Fn(&'a Row) -> T) -> Vec<T> {
        wave.iter().map(|&i| f(rows[i])).collect()
    }
    let statement = client.prepare_cached(ADMIT).await?;
    let stored = client
        .query(
            &statement,
            &[
                &column(rows, wave, |r| r.route.as_str()),
                &column(rows, wave, |r| r.delivery_id.as_str()),
                &column(rows, wave, |r| r.received),
                &column(rows, wave, |r| r.since),
                &column(rows, wave, |r| r.provider.as_str()),
                &column(rows, wave, |r| r.kind.as_str()),
                &column(rows, wave, |r| r.status),
                &column(rows, wave, |r| r.attempts),
                &column(rows, wave, |r| r.now),
                &column(rows, wave, |r| r.lease),
                &column(rows, wave, |r| r.raw_json.as_str()),
                &column(rows, wave, |r| r.trace.as_deref()),
                &holder,
                &CHANNEL,
            ],
        )
        .await?;
    let by_key: HashMap<(&str, &str), i64> = stored
        .iter()
        .map(|row| ((row.get(1), row.get(2)), row.get(0)))
        .collect();
    for &i in wave {
        ids[i] = by_key
            .get(&(rows[i].route.as_str(), rows[i].delivery_id.as_str()))
            .copied();
    }
    Ok(())
}
