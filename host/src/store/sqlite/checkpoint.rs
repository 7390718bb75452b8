//! Copies the write-ahead log back into the database file on a thread of
//! its own, so that the writer spends its time on commits, not on
//! checkpoints: a checkpoint copies every page the log holds, and run by
//! the writer it delays every acknowledgement queued behind it.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::StoreError;

/// How often the log is copied back.
const EVERY: Duration = Duration::from_millis(100);

/// Log pages beyond which the writer checkpoints itself. Only the writer
/// can restart the log from its beginning (a checkpoint racing commits
/// never finds it copied to the end), so it still checkpoints now and
/// then; by then this thread has copied nearly all of it.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// Stops the checkpointer when dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `db` every [`EVERY`].
    pub(super) fn start(db: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(db)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("wirehook-checkpoint".into())
            .spawn(move || checkpoint_until_stopped(&conn, &stopped))?;
        Ok(Self { _stop: stop })
    }
}

/// Checkpoints every [`EVERY`] until the store is dropped. A failure is
/// said once when it starts and once when it ends, not ten times a second.
fn checkpoint_until_stopped(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
        // PASSIVE: copies what no reader still needs, waits for no one,
        // and leaves the writer be.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Err(e) if !failing => {
                tracing::warn!("store: checkpoint failed: {e}; the writer's own checkpoints go on");
                failing = true;
            }
            Ok(()) if failing => {
                tracing::info!("store: checkpoints work again");
                failing = false;
            }
            _ => {}
        }
    }
}
