//! The respond log's side of the store: rows buffered as responses are
//! sent and written by one lazy job per batch, so that logging a response
//! costs the request its row's encoding and a push onto a vector, not a
//! store round trip.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::rows::{Answered, EncodedEvent, Inserts};
use super::{Commit, Job, Note, SqliteStore};
use crate::store::{Response, Status, StoreError};

/// Respond-log rows waiting for the writer beyond which new ones are not
/// logged: under an overload the writer cannot catch up with, the
/// daemon's memory must not grow with the backlog.
const MAX_PENDING_RESPONSES: usize = 100_000;

/// Respond-log rows for the writer, with the time each was logged. The
/// first row added while no job is scheduled schedules the one job that
/// writes them all.
#[derive(Default)]
pub(super) struct PendingResponses {
    rows: Vec<(LoggedResponse, u64)>,
    scheduled: bool,
}

/// A response as its row holds it, encoded by the request that logs it.
struct LoggedResponse {
    event: EncodedEvent,
    reply: Option<String>,
    error: Option<String>,
    duration_us: u64,
}

impl From<Response> for LoggedResponse {
    fn from(response: Response) -> Self {
        Self {
            event: response.event.into(),
            reply: response.reply,
            error: response.error,
            duration_us: response.duration_us,
        }
    }
}

/// A scheduled respond-log job's claim on the rows. Dropped unused (the
/// job's batch could not begin), it unschedules, so that the next row
/// schedules a job again rather than waiting behind one that never runs.
struct ScheduledResponses(Option<Arc<Mutex<PendingResponses>>>);

impl ScheduledResponses {
    fn take(&mut self) -> Vec<(LoggedResponse, u64)> {
        let Some(pending) = self.0.take() else {
            return Vec::new();
        };
        let mut pending = pending.lock().expect("respond log poisoned");
        pending.scheduled = false;
        std::mem::take(&mut pending.rows)
    }
}

impl Drop for ScheduledResponses {
    fn drop(&mut self) {
        if let Some(pending) = self.0.take() {
            pending.lock().expect("respond log poisoned").scheduled = false;
        }
    }
}

impl SqliteStore {
    /// Queues a respond-log row for the writer, scheduling the job that
    /// writes the queued rows if none is.
    pub(super) fn append_response(
        &self,
        response: Response,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let waiting = self
            .responses
            .lock()
            .expect("respond log poisoned")
            .rows
            .len();
        if waiting >= MAX_PENDING_RESPONSES {
            return Err(StoreError::LogBacklog(waiting));
        }
        // Encoded outside the lock, which the other requests' rows wait on.
        let row = LoggedResponse::from(response);
        {
            let mut pending = self.responses.lock().expect("respond log poisoned");
            pending.rows.push((row, now_ms));
            if pending.scheduled {
                return Ok(());
            }
            pending.scheduled = true;
        }
        let mut scheduled = ScheduledResponses(Some(self.responses.clone()));
        let work = Box::new(move |conn: &Connection| {
            let rows = scheduled.take();
            let written = Inserts::prepare(conn).and_then(|mut inserts| {
                rows.iter()
                    .try_for_each(|(response, now_ms)| log_row(&mut inserts, response, *now_ms))
            });
            let ok = written.is_ok();
            let note: Note = Box::new(move |committed| {
                let failed = written.map_err(|e| e.to_string()).and(committed);
                match failed {
                    Ok(()) => tracing::debug!(rows = rows.len(), "responses logged"),
                    Err(e) => tracing::error!(rows = rows.len(), "cannot log responses: {e}"),
                }
            });
            (ok, note)
        });
        self.jobs
            .send(Job {
                commit: Commit::Lazy,
                work,
            })
            .map_err(|_| StoreError::Closed)
    }
}

/// One respond-log row.
fn log_row(
    inserts: &mut Inserts<'_>,
    response: &LoggedResponse,
    now_ms: u64,
) -> rusqlite::Result<()> {
    let status = if response.error.is_some() {
        Status::Failed
    } else {
        Status::Responded
    };
    let answered = Answered {
        reply: response.reply.as_deref(),
        duration_us: response.duration_us,
    };
    inserts.insert(
        &response.event,
        status,
        response.error.as_deref(),
        Some(answered),
        now_ms,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::event;
    use crate::store::{DeliveryLog, Filter};

    fn response(n: usize) -> Response {
        Response {
            event: event("orders", &format!("d-{n}")),
            reply: Some("{}".into()),
            error: None,
            duration_us: 1,
        }
    }

    #[tokio::test]
    async fn a_writer_that_falls_behind_stops_the_log_and_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
        // A job that holds the writer until the test lets it go.
        let (release, released) = std::sync::mpsc::channel::<()>();
        store
            .jobs
            .send(Job {
                commit: Commit::Relaxed,
                work: Box::new(move |_| {
                    released.recv().unwrap();
                    (true, Box::new(|_| {}))
                }),
            })
            .unwrap();
        for n in 0..MAX_PENDING_RESPONSES {
            store.append_response(response(n), 1).unwrap();
        }
        assert!(matches!(
            store.append_response(response(MAX_PENDING_RESPONSES), 1),
            Err(StoreError::LogBacklog(MAX_PENDING_RESPONSES))
        ));

        release.send(()).unwrap();
        // Queued behind the log's job: answered once its rows are committed.
        store.list(Filter::default()).await.unwrap();
        store.append_response(response(0), 2).unwrap();
        store.list(Filter::default()).await.unwrap();
        let conn = Connection::open(dir.path().join("wirehook.db")).unwrap();
        let logged: usize = conn
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .unwrap();
        assert_eq!(logged, MAX_PENDING_RESPONSES + 1);
    }

    #[test]
    fn a_respond_log_job_dropped_unrun_unschedules() {
        let pending = Arc::new(Mutex::new(PendingResponses {
            rows: Vec::new(),
            scheduled: true,
        }));
        drop(ScheduledResponses(Some(pending.clone())));
        assert!(!pending.lock().unwrap().scheduled);

        // Taken, it unschedules once, and its drop leaves a job scheduled
        // since then alone.
        pending.lock().unwrap().scheduled = true;
        let mut job = ScheduledResponses(Some(pending.clone()));
        assert!(job.take().is_empty());
        pending.lock().unwrap().scheduled = true;
        drop(job);
        assert!(pending.lock().unwrap().scheduled);
    }
}
