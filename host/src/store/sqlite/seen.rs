//! The dedup window, held in memory by the writer thread.
//!
//! Why not a table keyed by delivery id: ids are random, so every event
//! admitted dirtied a B-tree page of its own, most of the pages a queue
//! commit wrote. The events' own rows already hold each admitted id, its
//! route and when it was received, in the order they were stored; so the
//! marks live in memory and are rebuilt from those rows when the first
//! event after a start is admitted. The `seen` table keeps only the marks
//! whose event was deleted (by retention or a purge) while its window
//! may still be open, and the marks an earlier wirehook wrote there.
//!
//! A mark is the id's route and delivery id as 128 bits of their SHA-256
//! (30 to 60 bytes an id in memory): two ids share one only by a SHA-256
//! collision.

use std::collections::HashMap;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

/// How far back from the window's start the rebuild reads, for rows
/// stored slightly out of the order they were received in (and a clock
/// stepped back by less than this).
const REBUILD_SLACK_MS: i64 = 3_600_000;

/// Statuses of events admitted through the queue; the respond log's rows
/// were never deduplicated.
const ADMITTED: [&str; 4] = ["queued", "running", "delivered", "dead"];

/// A route's delivery id.
pub(super) type Mark = [u8; 16];

pub(super) fn mark(route: &str, delivery_id: &str) -> Mark {
    let mut hash = Sha256::new();
    // Length first: ("ab", "c") and ("a", "bc") are different ids.
    hash.update((route.len() as u64).to_le_bytes());
    hash.update(route);
    hash.update(delivery_id);
    let digest = hash.finalize();
    let mut mark = Mark::default();
    mark.copy_from_slice(&digest[..16]);
    mark
}

/// Each id admitted inside the window, with when its event was received.
#[derive(Debug, Default)]
pub(super) struct Seen {
    received_at_ms: HashMap<Mark, u64>,
}

/// What one admission changed, for putting it back if its write does not
/// commit.
#[derive(Debug)]
pub(super) struct Change {
    mark: Mark,
    before: Option<u64>,
}

impl Seen {
    /// The marks of events received since `since_ms`, from the store's
    /// events (newest first, up to the first one received well before the
    /// window) and its `seen` table.
    pub(super) fn rebuild(conn: &Connection, since_ms: u64) -> rusqlite::Result<Self> {
        let mut seen = Self::default();
        let since = since_ms as i64;
        let mut events = conn.prepare(
            "SELECT route, delivery_id, received_at_ms, status FROM events ORDER BY id DESC",
        )?;
        let mut rows = events.query([])?;
        while let Some(row) = rows.next()? {
            let received_at: i64 = row.get(2)?;
            if received_at < since.saturating_sub(REBUILD_SLACK_MS) {
                break;
            }
            let status = row.get_ref(3)?.as_str()?;
            if received_at >= since && ADMITTED.contains(&status) {
                seen.keep(
                    mark(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?),
                    received_at,
                );
            }
        }
        let mut kept =
            conn.prepare("SELECT route, delivery_id, seen_at_ms FROM seen WHERE seen_at_ms >= ?1")?;
        let mut rows = kept.query([since])?;
        while let Some(row) = rows.next()? {
            seen.keep(
                mark(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?),
                row.get(2)?,
            );
        }
        tracing::debug!(
            ids = seen.received_at_ms.len(),
            "store: dedup window rebuilt"
        );
        Ok(seen)
    }

    fn keep(&mut self, mark: Mark, received_at: i64) {
        let received_at = received_at.max(0) as u64;
        let at = self.received_at_ms.entry(mark).or_default();
        *at = (*at).max(received_at);
    }

    /// Marks an event received at `received_at_ms` unless its id was
    /// received at or after `since_ms`: the change made, or `None` for a
    /// duplicate.
    pub(super) fn admit(
        &mut self,
        mark: Mark,
        received_at_ms: u64,
        since_ms: u64,
    ) -> Option<Change> {
        let before = self.received_at_ms.get(&mark).copied();
        if before.is_some_and(|at| at >= since_ms) {
            return None;
        }
        self.received_at_ms.insert(mark, received_at_ms);
        Some(Change { mark, before })
    }

    /// Puts back what `changes` changed, last first.
    pub(super) fn undo(&mut self, changes: Vec<Change>) {
        for change in changes.into_iter().rev() {
            match change.before {
                Some(at) => self.received_at_ms.insert(change.mark, at),
                None => self.received_at_ms.remove(&change.mark),
            };
        }
    }

    /// Drops the marks of ids received before `before_ms`.
    pub(super) fn forget_before(&mut self, before_ms: u64) {
        self.received_at_ms.retain(|_, at| *at >= before_ms);
        // Only after a burst has passed: shrinking rehashes every mark, on
        // the thread every acknowledgement waits for.
        let kept = self.received_at_ms.len();
        if kept < self.received_at_ms.capacity() / 4 {
            self.received_at_ms.shrink_to(kept * 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_and_id_are_told_apart_where_they_meet() {
        assert_ne!(mark("ab", "c"), mark("a", "bc"));
        assert_eq!(mark("r", "d1"), mark("r", "d1"));
    }

    #[test]
    fn an_undone_admission_leaves_the_mark_as_it_was() {
        let mut seen = Seen::default();
        let [a, b] = [mark("r", "a"), mark("r", "b")];
        let first = seen.admit(a, 1_000, 0).unwrap();
        assert!(seen.admit(a, 2_000, 0).is_none(), "a duplicate");
        // Outside a window starting at 1 500: admitted again, then undone.
        let again = seen.admit(a, 3_000, 1_500).unwrap();
        let other = seen.admit(b, 3_000, 1_500).unwrap();
        seen.undo(vec![again, other]);
        assert_eq!(seen.received_at_ms.get(&a), Some(&1_000));
        assert_eq!(seen.received_at_ms.get(&b), None);
        seen.undo(vec![first]);
        assert!(seen.received_at_ms.is_empty());
    }

    #[test]
    fn forgetting_keeps_the_window() {
        let mut seen = Seen::default();
        seen.admit(mark("r", "old"), 1_000, 0).unwrap();
        seen.admit(mark("r", "new"), 5_000, 0).unwrap();
        seen.forget_before(5_000);
        assert!(seen.admit(mark("r", "old"), 6_000, 0).is_some());
        assert!(seen.admit(mark("r", "new"), 6_000, 0).is_none());
    }

    mod across_restarts {
        use crate::event::Event;
        use crate::store::tests::event;
        use crate::store::{
            Admin, Admission, DeliveryLog, Intake, Outcome, Queue, Response, SqliteStore,
            StoreError, UnixMs,
        };

        fn received_at(mut event: Event, ms: u64) -> Event {
            event.source.received_at_ms = ms;
            event
        }

        async fn admit(store: &SqliteStore, delivery_id: &str, since_ms: u64) -> Admission {
            let e = received_at(event("r", delivery_id), 9_000);
            store
                .enqueue(Intake::Queue, vec![e], UnixMs(9_000), UnixMs(since_ms))
                .await
                .unwrap()[0]
        }

        #[tokio::test]
        async fn the_window_is_rebuilt_from_the_events_stored() {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            let events = vec![
                received_at(event("r", "old"), 1_000),
                received_at(event("r", "new"), 5_000),
            ];
            store
                .enqueue(Intake::Queue, events, UnixMs(5_000), UnixMs(0))
                .await
                .unwrap();
            let answered = Response {
                event: received_at(event("r", "answered"), 5_000),
                reply: None,
                error: None,
                duration_us: 1,
            };
            store.log_response(answered, UnixMs(5_000)).await.unwrap();
            // Written before the store closes: a later write waits behind it.
            store.depth().await.unwrap();
            drop(store);

            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            // A window from 2 000: "new" is inside it, "old" is not, and
            // the respond log's ids were never deduplicated.
            assert_eq!(admit(&store, "new", 2_000).await, Admission::Duplicate);
            assert!(matches!(
                admit(&store, "old", 2_000).await,
                Admission::Queued(_)
            ));
            assert!(matches!(
                admit(&store, "answered", 2_000).await,
                Admission::Queued(_)
            ));
            assert_eq!(admit(&store, "old", 2_000).await, Admission::Duplicate);
        }

        #[tokio::test]
        async fn deleted_events_keep_their_marks_until_the_window_closes() {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            let events = vec![
                received_at(event("r", "delivered"), 5_000),
                received_at(event("r", "dead"), 5_000),
            ];
            store
                .enqueue(Intake::Queue, events, UnixMs(5_000), UnixMs(0))
                .await
                .unwrap();
            let claimed = store.claim(UnixMs(5_000), 10, None).await.unwrap();
            let dead = Outcome::Dead { error: "no".into() };
            let outcomes = vec![(claimed[0].id, Outcome::Delivered), (claimed[1].id, dead)];
            store.finish(outcomes, UnixMs(5_000)).await.unwrap();
            // A retention shorter than the window deletes the delivered
            // event, a purge the dead one.
            assert_eq!(store.prune(UnixMs(6_000), UnixMs(2_000)).await.unwrap(), 1);
            assert_eq!(store.purge_dead(Vec::new()).await.unwrap(), 1);
            drop(store);

            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            for id in ["delivered", "dead"] {
                assert_eq!(admit(&store, id, 2_000).await, Admission::Duplicate, "{id}");
            }
            // The window closes on both: their marks go, in memory and on disk.
            store.prune(UnixMs(0), UnixMs(6_000)).await.unwrap();
            assert!(matches!(
                admit(&store, "dead", 6_000).await,
                Admission::Queued(_)
            ));
            drop(store);
            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            assert!(matches!(
                admit(&store, "delivered", 6_000).await,
                Admission::Queued(_)
            ));
        }

        #[tokio::test]
        async fn an_event_whose_write_failed_is_not_marked() {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            let conn = rusqlite::Connection::open(dir.path().join("wirehook.db")).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            conn.execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON event_bodies
                 BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
            )
            .unwrap();
            let refused = store
                .enqueue(
                    Intake::Queue,
                    vec![event("r", "d1")],
                    UnixMs(9_000),
                    UnixMs(0),
                )
                .await;
            assert!(
                matches!(refused, Err(StoreError::Backend(_))),
                "{refused:?}"
            );
            conn.execute_batch("DROP TRIGGER refuse").unwrap();
            // The provider's retry is the event, not a duplicate of it.
            assert!(matches!(admit(&store, "d1", 0).await, Admission::Queued(_)));
        }

        #[tokio::test]
        async fn one_daemon_owns_a_store() {
            let dir = tempfile::tempdir().unwrap();
            let owner = SqliteStore::open_owned(dir.path(), crate::providers::redecode).unwrap();
            assert!(matches!(
                SqliteStore::open_owned(dir.path(), crate::providers::redecode),
                Err(StoreError::Owned(path)) if path == dir.path()
            ));
            // Readers such as `wirehook events` open it beside the daemon.
            let reader = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
            assert_eq!(reader.depth().await.unwrap(), 0);
            drop(owner);
            SqliteStore::open_owned(dir.path(), crate::providers::redecode).unwrap();
        }
    }
}
