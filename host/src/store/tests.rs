//! The store's semantics with injected time: every call takes `now_ms`
//! from the test, so windows, backoff and retention need no waiting.

use std::sync::Arc;

use super::{
    Admission, DeliveryLog, Filter, Intake, Outcome, Queue, Record, SqliteStore, Status, Store,
    UnixMs,
};
use crate::event::{Event, Source};

/// A flow call on `route`, as goflow decodes it: the store keeps its raw
/// JSON and decodes it again when the event is read.
pub(in crate::store) fn event(route: &str, delivery_id: &str) -> Event {
    let raw_json =
        format!(r#"{{"contact":{{"uuid":"c-{delivery_id}"}},"input":{{"text":"CU001"}}}}"#);
    let decode = crate::providers::decoder("goflow").unwrap();
    let decoded = decode(raw_json.as_bytes()).unwrap().remove(0);
    Event {
        source: Source {
            provider: "goflow".into(),
            route: route.into(),
            delivery_id: delivery_id.into(),
            received_at_ms: 1,
            attempt: 1,
        },
        kind: decoded.kind,
        payload: decoded.payload,
        raw_json: decoded.raw_json,
    }
}

/// An event on `route` from a provider this wirehook does not know, so
/// that its payload cannot be decoded again when it is read.
fn unreadable(route: &str, delivery_id: &str) -> Event {
    let event = event(route, delivery_id);
    Event {
        source: Source {
            provider: "nonesuch".into(),
            ..event.source
        },
        ..event
    }
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
    (dir, store)
}

/// The delivery log once it holds `rows` rows: respond-log rows are
/// written after `log_response` returns. Fails after a deadline.
async fn logged(store: &dyn Store, rows: usize) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = store.list(Filter::default()).await.unwrap();
        if log.len() >= rows || tokio::time::Instant::now() > deadline {
            assert_eq!(log.len(), rows, "rows in the delivery log");
            return log;
        }
        tokio::task::yield_now().await;
    }
}

async fn dedup_holds_inside_the_window_only(store: Arc<dyn Store>) {
    let e = || vec![event("r", "d1")];
    assert!(matches!(
        store
            .enqueue(Intake::Queue, e(), UnixMs(1_000), UnixMs(0))
            .await
            .unwrap()[0],
        Admission::Queued(_)
    ));
    // 1 s later, window of 10 s: duplicate.
    assert_eq!(
        store
            .enqueue(Intake::Queue, e(), UnixMs(2_000), UnixMs(0))
            .await
            .unwrap(),
        vec![Admission::Duplicate]
    );
    // Same id on another route is another event.
    let other = store
        .enqueue(
            Intake::Queue,
            vec![event("r2", "d1")],
            UnixMs(2_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    assert!(matches!(other[0], Admission::Queued(_)));
    // 20 s later with a 10 s window: accepted again.
    assert!(matches!(
        store
            .enqueue(Intake::Queue, e(), UnixMs(21_000), UnixMs(11_000))
            .await
            .unwrap()[0],
        Admission::Queued(_)
    ));
}

async fn a_retry_waits_for_its_time_and_counts_attempts(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d1")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let claimed = store.claim(UnixMs(1_000), 10, None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].event.source.attempt, 1);
    let retry = Outcome::Retry {
        error: "busy".into(),
        at: UnixMs(1_500),
    };
    store
        .finish(vec![(claimed[0].id, retry)], UnixMs(1_000))
        .await
        .unwrap();
    assert_eq!(store.next_due(None).await.unwrap(), Some(UnixMs(1_500)));
    assert!(
        store
            .claim(UnixMs(1_499), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim(UnixMs(1_500), 10, None).await.unwrap();
    assert_eq!(again[0].attempt, 2);
    assert_eq!(again[0].event.source.attempt, 2);
    store
        .finish(vec![(again[0].id, Outcome::Delivered)], UnixMs(1_600))
        .await
        .unwrap();
    assert_eq!(store.depth().await.unwrap(), 0);
    let log = store.list(Filter::default()).await.unwrap();
    assert_eq!(log[0].status, Status::Delivered);
    assert_eq!(log[0].attempts, 2);
    assert_eq!(log[0].last_error.as_deref(), Some("busy"));
}

async fn one_write_records_several_outcomes(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "a"), event("r", "b"), event("r", "c")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let claimed = store.claim(UnixMs(1_000), 2, None).await.unwrap();
    assert_eq!(claimed.len(), 2, "no more than the limit");
    let retry = Outcome::Retry {
        error: "later".into(),
        at: UnixMs(3_000),
    };
    store
        .finish(
            vec![(claimed[0].id, Outcome::Delivered), (claimed[1].id, retry)],
            UnixMs(1_100),
        )
        .await
        .unwrap();
    let status_of =
        |records: &[super::Record], id| records.iter().find(|r| r.id == id).map(|r| r.status);
    let log = store.list(Filter::default()).await.unwrap();
    assert_eq!(status_of(&log, claimed[0].id), Some(Status::Delivered));
    assert_eq!(status_of(&log, claimed[1].id), Some(Status::Queued));
    // The third was never claimed; the retried one waits for its time.
    let next = store.claim(UnixMs(1_100), 10, None).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event.source.delivery_id, "c");
}

async fn respond_log_rows_are_written_in_order_with_later_work(store: Arc<dyn Store>) {
    for n in 0..50 {
        let answered = super::Response {
            event: event("r", &format!("answered-{n}")),
            reply: Some(format!("{{\"n\":{n}}}")),
            error: (n % 10 == 0).then(|| "plugin failed".to_owned()),
            duration_us: 5,
        };
        store.log_response(answered, UnixMs(1_000)).await.unwrap();
    }
    let log = logged(&*store, 50).await;
    let failed = log.iter().filter(|r| r.status == Status::Failed).count();
    assert_eq!(failed, 5);
    assert!(
        log.iter()
            .any(|r| r.reply.as_deref() == Some(r#"{"n":49}"#))
    );
}

#[tokio::test]
async fn events_left_running_by_a_crash_come_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
        store
            .enqueue(
                Intake::Queue,
                vec![event("r", "d1")],
                UnixMs(1_000),
                UnixMs(0),
            )
            .await
            .unwrap();
        assert_eq!(store.claim(UnixMs(1_000), 10, None).await.unwrap().len(), 1);
    }
    let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
    assert!(
        store
            .claim(UnixMs(2_000), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recover(UnixMs(2_000)).await.unwrap(), 1);
    let claimed = store.claim(UnixMs(2_000), 10, None).await.unwrap();
    assert_eq!(claimed[0].attempt, 2, "the interrupted attempt counts");
}

#[tokio::test]
async fn events_claimed_at_intake_are_running_and_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
        let admissions = store
            .enqueue(
                Intake::Claim,
                vec![event("r", "d1"), event("r", "d1")],
                UnixMs(1_000),
                UnixMs(0),
            )
            .await
            .unwrap();
        assert!(matches!(
            admissions[..],
            [Admission::Queued(_), Admission::Duplicate]
        ));
        // Already claimed: no worker claims it from the store as well.
        assert!(
            store
                .claim(UnixMs(1_000), 10, None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.depth().await.unwrap(), 1);
        let [record] = &store.list(Filter::default()).await.unwrap()[..] else {
            panic!("one record");
        };
        assert_eq!((record.status, record.attempts), (Status::Running, 1));
    }
    let store = SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
    assert_eq!(store.recover(UnixMs(2_000)).await.unwrap(), 1);
    let claimed = store.claim(UnixMs(2_000), 10, None).await.unwrap();
    assert_eq!(claimed[0].attempt, 2, "the interrupted attempt counts");
}

async fn dead_letters_replay_and_purge(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d1"), event("r", "d2")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    for claimed in store.claim(UnixMs(1_000), 10, None).await.unwrap() {
        let dead = Outcome::Dead {
            error: "nope".into(),
        };
        store
            .finish(vec![(claimed.id, dead)], UnixMs(1_000))
            .await
            .unwrap();
    }
    let dead = store
        .list(Filter {
            status: Some(Status::Dead),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(
        store
            .replay(vec![dead[0].id, 999], UnixMs(2_000))
            .await
            .unwrap(),
        vec![dead[0].id]
    );
    let claimed = store.claim(UnixMs(2_000), 10, None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempt, 1, "a replay counts attempts afresh");
    assert_eq!(store.purge_dead(Vec::new()).await.unwrap(), 1);
    assert!(store.get(dead[1].id).await.unwrap().is_none());
}

async fn retention_prunes_finished_events_only(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "old"), event("r", "waiting")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let first = store.claim(UnixMs(1_000), 1, None).await.unwrap().remove(0);
    store
        .finish(vec![(first.id, Outcome::Delivered)], UnixMs(1_000))
        .await
        .unwrap();
    let answered = super::Response {
        event: event("r", "answered"),
        reply: Some("{}".into()),
        error: None,
        duration_us: 5,
    };
    store.log_response(answered, UnixMs(1_000)).await.unwrap();
    logged(&*store, 3).await;
    assert_eq!(store.prune(UnixMs(5_000), UnixMs(0)).await.unwrap(), 2);
    let left = store.list(Filter::default()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, Status::Queued);
}

async fn concurrent_enqueues_all_commit(store: Arc<dyn Store>) {
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .enqueue(
                    Intake::Queue,
                    vec![event("r", &format!("d{n}"))],
                    UnixMs(1_000),
                    UnixMs(0),
                )
                .await
                .unwrap()
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(admissions) = tasks.join_next().await {
        match admissions.unwrap()[..] {
            [Admission::Queued(id)] => assert!(ids.insert(id)),
            ref other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.depth().await.unwrap(), 200);
}

#[test]
fn claiming_at_a_new_time_reuses_the_prepared_statement() {
    let (dir, store) = open();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("wirehook.db")).unwrap();
    let mut claim = conn.prepare(super::sqlite::CLAIM).unwrap();
    for now in 0..10_i64 {
        let mut rows = claim
            .query(rusqlite::params![now, 1 + now % 3, None::<String>])
            .unwrap();
        while rows.next().unwrap().is_some() {}
    }
    // A bound LIMIT next to a bound range makes SQLite plan the statement
    // again for every new value: once per claim, a tenth of the writer's time.
    assert_eq!(claim.get_status(rusqlite::StatementStatus::RePrepare), 0);
}

#[test]
fn queue_queries_read_the_pending_index_not_the_log() {
    let (dir, store) = open();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("wirehook.db")).unwrap();
    for sql in [
        super::sqlite::CLAIM,
        super::sqlite::PENDING,
        super::sqlite::NEXT_DUE,
    ] {
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = plan
            .query_map(
                rusqlite::params![None::<String>, 1_i64, None::<String>][..plan.parameter_count()]
                    .as_ref(),
                |row| row.get(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // A scan of `events` would read every respond-log and delivered row.
        assert!(
            steps.iter().all(|step| !step.starts_with("SCAN events")),
            "{sql}: {steps:?}"
        );
        assert!(
            steps.iter().any(|step| step.contains("events_pending")),
            "{sql}: {steps:?}"
        );
    }
}

async fn an_event_whose_provider_is_gone_reads_as_corrupt(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![unreadable("r", "d1")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let read = store.get(1).await;
    assert!(
        matches!(&read, Err(super::StoreError::Corrupt { id: 1, reason }) if reason.contains("unknown provider `nonesuch`")),
        "{read:?}"
    );
}

async fn a_claim_dead_letters_an_event_it_cannot_read_and_hands_out_the_rest(
    store: Arc<dyn Store>,
) {
    store
        .enqueue(
            Intake::Queue,
            vec![unreadable("r", "d1"), event("r", "d2")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let claimed = store.claim(UnixMs(1_000), 10, None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event, event("r", "d2"));

    let dead = store
        .list(Filter {
            status: Some(Status::Dead),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery_id, "d1");
    let reason = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(reason.contains("unknown provider `nonesuch`"), "{reason}");
    // Nothing is left for a later claim to trip over.
    assert!(
        store
            .claim(UnixMs(2_000), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

mod attempts;
mod hardening;
mod listing;
mod postgres;

use attempts::every_attempt_is_kept_with_its_times_error_and_plugin;
use hardening::{
    events_of_a_route_not_configured_wait_untouched,
    purging_many_dead_letters_takes_many_short_transactions, the_kv_quota_counts_bytes,
};
use listing::listings_filter_search_and_page_newest_first;

/// The tests every backend passes, each run on a fresh store of each.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let (_dir, store) = super::open();
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some((_server, store)) = super::postgres::open(stringify!($test)).await else {
                        return;
                    };
                    super::$test(store).await;
                }
            )*
        }
    };
}

conformance!(
    dedup_holds_inside_the_window_only,
    a_retry_waits_for_its_time_and_counts_attempts,
    one_write_records_several_outcomes,
    respond_log_rows_are_written_in_order_with_later_work,
    dead_letters_replay_and_purge,
    retention_prunes_finished_events_only,
    concurrent_enqueues_all_commit,
    an_event_whose_provider_is_gone_reads_as_corrupt,
    a_claim_dead_letters_an_event_it_cannot_read_and_hands_out_the_rest,
    purging_many_dead_letters_takes_many_short_transactions,
    events_of_a_route_not_configured_wait_untouched,
    the_kv_quota_counts_bytes,
    listings_filter_search_and_page_newest_first,
    every_attempt_is_kept_with_its_times_error_and_plugin,
);
