//! The store under conditions it must survive: files created private
//! whatever the umask, a KV quota that counts bytes, purges in bounded
//! transactions, a writer thread that dies, and events whose route is
//! not configured.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use super::{event, open};
use crate::store::sqlite::Commit;
use crate::store::{
    Filter, Intake, KvStore, Outcome, Queue, SqliteStore, Status, Store, StoreError, UnixMs,
};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn store_files_are_private_to_the_owner() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = SqliteStore::open_owned(&dir, crate::providers::redecode).unwrap();
    // Something in the log, so that -wal and -shm exist.
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d1")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    assert_eq!(mode(&dir), 0o700, "the data dir");
    for file in [
        "wirehook.db",
        "wirehook.db-wal",
        "wirehook.db-shm",
        "wirehook.lock",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

pub(super) async fn the_kv_quota_counts_bytes(store: Arc<dyn Store>) {
    // "é" is two bytes in one character: 4 keys of 1 byte and values
    // of 2 bytes fill 12 bytes exactly.
    for key in ["a", "b", "c", "d"] {
        assert!(store.kv_set("p", key, "é".into(), 12).await.unwrap());
    }
    assert!(
        !store.kv_set("p", "e", "é".into(), 12).await.unwrap(),
        "a 13th byte is over the quota"
    );
    // A key of two-byte characters counts its bytes too.
    assert!(!store.kv_set("q", "éé", vec![0; 9], 12).await.unwrap());
    assert!(store.kv_set("q", "éé", vec![0; 8], 12).await.unwrap());
    // Replacing a value counts the new one instead of the old.
    assert!(store.kv_set("p", "a", "ü".into(), 12).await.unwrap());
    assert!(!store.kv_set("p", "a", "üx".into(), 12).await.unwrap());
    // Deleting gives its bytes back.
    store.kv_delete("p", "b").await.unwrap();
    assert!(store.kv_set("p", "e", "é".into(), 12).await.unwrap());
    assert_eq!(
        store.kv_list("p", "", 10).await.unwrap(),
        ["a", "c", "d", "e"]
    );
    assert_eq!(store.kv_get("p", "a").await.unwrap(), Some("ü".into()));
}

#[tokio::test]
async fn the_kv_quota_keeps_its_total_across_stores() {
    let (_dir, store) = open();
    assert!(store.kv_set("p", "a", "é".into(), 12).await.unwrap());
    assert!(store.kv_set("q", "éé", vec![0; 8], 12).await.unwrap());
    // Another store on the same file sums what is there.
    drop(store);
    let store = SqliteStore::open(_dir.path(), crate::providers::redecode).unwrap();
    assert!(!store.kv_set("p", "f", vec![0; 10], 12).await.unwrap());
    // What is summed from the file counts bytes too: "éé" and its 8
    // bytes are 12, not 10.
    assert!(!store.kv_set("q", "x", Vec::new(), 12).await.unwrap());
    assert!(store.kv_set("p", "f", vec![0; 8], 12).await.unwrap());
}

pub(super) async fn purging_many_dead_letters_takes_many_short_transactions(store: Arc<dyn Store>) {
    let events: Vec<_> = (0..1_203).map(|i| event("r", &format!("d{i}"))).collect();
    store
        .enqueue(Intake::Queue, events, UnixMs(1_000), UnixMs(0))
        .await
        .unwrap();
    let claimed = store.claim(UnixMs(1_000), 2_000, None).await.unwrap();
    let outcomes = claimed
        .iter()
        .map(|c| (c.id, Outcome::Dead { error: "no".into() }))
        .collect();
    store.finish(outcomes, UnixMs(1_000)).await.unwrap();
    assert_eq!(store.purge_dead(Vec::new()).await.unwrap(), 1_203);
    assert!(store.list(Filter::default()).await.unwrap().is_empty());
    // Their ids stay seen while the window is open.
    let again = store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d7")],
            UnixMs(2_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    assert_eq!(again, vec![crate::store::Admission::Duplicate]);
}

#[tokio::test]
async fn a_writer_that_panics_is_reported_gone() {
    let (_dir, store) = open();
    let gone = store.writer_gone();
    assert_eq!(store.depth().await.unwrap(), 0);
    let panicked = store
        .run(Commit::Relaxed, |_| -> Result<(), StoreError> {
            panic!("a bug in a store job")
        })
        .await;
    assert!(matches!(panicked, Err(StoreError::Closed)), "{panicked:?}");
    // A bound on a hang, not a measure of speed.
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("writer_gone resolves");
    assert!(matches!(store.depth().await, Err(StoreError::Closed)));
}

pub(super) async fn events_of_a_route_not_configured_wait_untouched(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("old", "d1"), event("kept", "d2")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let routes = || Some(vec!["kept".to_owned(), "new".to_owned()]);
    assert_eq!(store.next_due(routes()).await.unwrap(), Some(UnixMs(1_000)));
    let claimed = store.claim(UnixMs(5_000), 10, routes()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.source.route, "kept");
    store
        .finish(vec![(claimed[0].id, Outcome::Delivered)], UnixMs(5_000))
        .await
        .unwrap();
    assert_eq!(store.next_due(routes()).await.unwrap(), None);
    assert!(
        store
            .claim(UnixMs(6_000), 10, routes())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.waiting(routes().unwrap()).await.unwrap(),
        vec![("old".to_owned(), 1)]
    );
    // Claimed (by a table that still had it) and handed back: the attempt
    // does not count.
    let claimed = store.claim(UnixMs(6_000), 10, None).await.unwrap();
    assert_eq!(claimed[0].attempt, 1);
    store
        .finish(vec![(claimed[0].id, Outcome::Wait)], UnixMs(6_000))
        .await
        .unwrap();
    let (record, _) = store.get(claimed[0].id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (Status::Queued, 0));
    // The route is back.
    let back = Some(vec!["old".to_owned()]);
    let claimed = store.claim(UnixMs(7_000), 10, back).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
}
