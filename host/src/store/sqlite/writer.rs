//! The store's one writer thread: it takes whatever jobs are waiting,
//! runs them in one transaction with a savepoint each, commits once (with
//! an fsync only if a job was promised one), then tells each job how it
//! went.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// Most operations one commit takes; bounds the latency of the first.
const MAX_BATCH: usize = 512;

/// How long a batch of nothing but respond-log rows waits for more.
pub(super) const LINGER: Duration = Duration::from_millis(2);

/// Told whether the batch a job ran in committed.
pub(super) type Note = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What a job's caller is promised about its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Commit {
    /// On disk when the caller hears back (fsync).
    Durable,
    /// Committed soon; on disk with the next durable commit.
    Relaxed,
    /// As relaxed, and in no hurry: waits up to [`LINGER`] for company.
    /// The first job to arrive meanwhile ends the wait, so that no job
    /// waits on a lazy one.
    Lazy,
}

/// Runs inside the batch's transaction, in a savepoint of its own that is
/// rolled back if the work failed, and returns how it went plus the note
/// to send after commit.
pub(super) type Work = Box<dyn FnOnce(&Connection) -> (bool, Note) + Send>;

/// A unit of work for the writer thread.
pub(super) struct Job {
    pub(super) commit: Commit,
    pub(super) work: Work,
}

/// The writer thread: takes whatever jobs are waiting, runs them in one
/// transaction, commits once, then tells each job how it went. Ends when
/// every sender is gone, after the last batch is committed.
/// A lazy job waits up to `linger` ([`LINGER`] in the store). Each
/// commit that changed rows counts one in `written`.
pub(super) fn write_loop(
    conn: &mut Connection,
    inbox: &mpsc::Receiver<Job>,
    linger: Duration,
    written: &tokio::sync::watch::Sender<u64>,
) {
    // As `open` left it.
    let mut fsync = true;
    while let Ok(first) = inbox.recv() {
        let batch = gather(first, inbox, linger);
        let durable = batch.iter().any(|job| job.commit == Commit::Durable);
        if durable != fsync {
            let level = if durable { "FULL" } else { "NORMAL" };
            if let Err(e) = conn.pragma_update(None, "synchronous", level) {
                // Dropping the jobs fails their callers; nothing was written.
                tracing::error!(
                    jobs = batch.len(),
                    "store: cannot set synchronous = {level}: {e}"
                );
                continue;
            }
            fsync = durable;
        }
        let before = conn.total_changes();
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(jobs = batch.len(), "store: cannot begin a transaction: {e}");
                continue;
            }
        };
        let mut notes = Vec::with_capacity(batch.len());
        for job in batch {
            match in_savepoint(&tx, job.work) {
                Ok(note) => notes.push(note),
                Err(e) => tracing::error!("store: cannot open a savepoint: {e}"),
            }
        }
        let committed = tx.commit().map_err(|e| e.to_string());
        match &committed {
            Err(reason) => tracing::error!("store: commit failed: {reason}"),
            // Reads go through this thread too: they wake no one.
            Ok(()) if conn.total_changes() != before => {
                written.send_modify(|n| *n = n.wrapping_add(1));
            }
            Ok(()) => {}
        }
        for note in notes {
            note(committed.clone());
        }
    }
}

/// Runs `work` in a savepoint: released if the work succeeded, rolled
/// back if it failed. The statements are prepared once, not parsed per
/// job as `rusqlite::Savepoint` would.
fn in_savepoint(conn: &Connection, work: Work) -> rusqlite::Result<Note> {
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT job")?;
    let (ok, note) = work(conn);
    let ended = if ok {
        run("RELEASE job")
    } else {
        run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
    };
    Ok(match ended {
        Ok(_) => note,
        Err(e) => Box::new(move |_| note(Err(e.to_string()))),
    })
}

/// `first` and whatever else is waiting, up to [`MAX_BATCH`]. A batch
/// that starts with a lazy job first waits up to `linger` for another
/// job: one wake-up, whichever comes first, not one per respond-log row
/// (a lazy job carries every row logged until it runs).
fn gather(first: Job, inbox: &mpsc::Receiver<Job>, linger: Duration) -> Vec<Job> {
    let lazy = first.commit == Commit::Lazy;
    let mut batch = vec![first];
    if lazy && let Ok(job) = inbox.recv_timeout(linger) {
        batch.push(job);
    }
    while batch.len() < MAX_BATCH {
        match inbox.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(commit: Commit, done: mpsc::Sender<Commit>) -> Job {
        Job {
            commit,
            work: Box::new(move |_| {
                let note: Note = Box::new(move |committed| {
                    committed.unwrap();
                    done.send(commit).unwrap();
                });
                (true, note)
            }),
        }
    }

    #[test]
    fn a_job_arriving_while_a_lazy_one_lingers_ends_the_wait() {
        let (jobs, inbox) = mpsc::channel();
        let writer = std::thread::spawn(move || {
            let mut conn = Connection::open_in_memory().unwrap();
            // Longer than any test run: only another job ends this wait.
            let written = tokio::sync::watch::channel(0).0;
            write_loop(&mut conn, &inbox, Duration::from_secs(24 * 3600), &written);
        });
        let (done, notes) = mpsc::channel();
        jobs.send(job(Commit::Lazy, done.clone())).unwrap();
        jobs.send(job(Commit::Durable, done)).unwrap();
        // A bound on a hang, not a measure of speed.
        let first = notes.recv_timeout(Duration::from_secs(60)).unwrap();
        let second = notes.recv_timeout(Duration::from_secs(60)).unwrap();
        // One batch, in the order the jobs came.
        assert_eq!((first, second), (Commit::Lazy, Commit::Durable));
        drop(jobs);
        writer.join().unwrap();
    }
}
