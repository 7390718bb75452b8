//! What only a shared database does: several instances on one database,
//! leases, and migrations. Each test starts a PostgreSQL server of its own.

use std::sync::Arc;

use super::event;
use crate::store::{
    Admission, Intake, Outcome, PostgresStore, Queue, Role, Status, Store, StoreError, UnixMs,
};

#[path = "../../../tests/daemon/harness/postgres.rs"]
mod server;

pub(super) use server::PgServer;

/// The lease the tests' stores take: 30 s of injected time.
const LEASE_SECS: u64 = 30;

/// A server for `test` and a store on it; `None` when PostgreSQL is not
/// installed (and not required).
pub(super) async fn open(test: &str) -> Option<(PgServer, Arc<dyn Store>)> {
    let test = test.to_owned();
    let server = tokio::task::spawn_blocking(move || PgServer::start(&test))
        .await
        .unwrap()?;
    let store = connect(&server).await;
    Some((server, Arc::new(store)))
}

/// Another instance's store on `server`. As a command's, it renews no
/// leases by the clock, so that injected time alone moves them.
pub(super) async fn connect(server: &PgServer) -> PostgresStore {
    PostgresStore::connect(
        &server.url(),
        Default::default(),
        4,
        LEASE_SECS,
        Role::Command,
        crate::providers::redecode,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_hands_the_event_to_another_instance() {
    let Some((server, a)) = open("a_lapsed_lease_hands_the_event_to_another_instance").await else {
        return;
    };
    let b = connect(&server).await;
    a.enqueue(
        Intake::Queue,
        vec![event("r", "d1")],
        UnixMs(1_000),
        UnixMs(0),
    )
    .await
    .unwrap();
    let held = a.claim(UnixMs(1_000), 10, None).await.unwrap();
    assert_eq!(held.len(), 1);
    // Held under its lease: no other instance takes it.
    assert!(b.claim(UnixMs(30_999), 10, None).await.unwrap().is_empty());
    assert_eq!(b.recover(UnixMs(30_999)).await.unwrap(), 0);
    // The holder stopped renewing: once the lease lapses, any instance may.
    let taken = b.claim(UnixMs(31_001), 10, None).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt, 2, "the lapsed attempt counts");
    // The first holder's late outcome is not the event's any more.
    a.finish(
        vec![(
            held[0].id,
            Outcome::Dead {
                error: "late".into(),
            },
        )],
        UnixMs(31_002),
    )
    .await
    .unwrap();
    b.finish(vec![(taken[0].id, Outcome::Delivered)], UnixMs(31_003))
        .await
        .unwrap();
    let (record, _) = a.get(held[0].id).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (Status::Delivered, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_id_at_two_instances_at_once_is_admitted_once() {
    let Some((server, a)) = open("one_delivery_id_at_two_instances_at_once_is_admitted_once").await
    else {
        return;
    };
    let b: Arc<dyn Store> = Arc::new(connect(&server).await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let intake = if n % 4 < 2 {
            Intake::Queue
        } else {
            Intake::Claim
        };
        tasks.spawn(async move {
            store
                .enqueue(intake, vec![event("r", "same")], UnixMs(1_000), UnixMs(0))
                .await
                .unwrap()
        });
    }
    let mut queued = 0;
    while let Some(admissions) = tasks.join_next().await {
        if matches!(admissions.unwrap()[..], [Admission::Queued(_)]) {
            queued += 1;
        }
    }
    assert_eq!(queued, 1);
    assert_eq!(a.depth().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_binary_is_refused() {
    let Some((server, _store)) = open("a_schema_newer_than_the_binary_is_refused").await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("INSERT INTO wirehook_schema (version) VALUES (1000)", &[])
        .await
        .unwrap();
    let refused = PostgresStore::connect(
        &server.url(),
        Default::default(),
        2,
        LEASE_SECS,
        Role::Daemon,
        crate::providers::redecode,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::NewerLayout { found: 1000, .. })),
        "{:?}",
        refused.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_unavailable_and_comes_back() {
    let Some((server, store)) = open("a_stopped_database_is_unavailable_and_comes_back").await
    else {
        return;
    };
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d1")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let server = Arc::new(server);
    let stopping = server.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    let down = store.depth().await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    let resuming = server.clone();
    tokio::task::spawn_blocking(move || resuming.resume())
        .await
        .unwrap();
    // The pool replaces its broken connections by itself.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match store.depth().await {
            Ok(depth) => {
                assert_eq!(depth, 1, "the committed event survived");
                break;
            }
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_renews_the_leases_of_the_events_it_holds() {
    let Some((server, _store)) = open("a_daemon_renews_the_leases_of_the_events_it_holds").await
    else {
        return;
    };
    // A lease of a second, renewed every third of it.
    let daemon = PostgresStore::connect(
        &server.url(),
        Default::default(),
        2,
        1,
        Role::Daemon,
        crate::providers::redecode,
    )
    .await
    .unwrap();
    let now = UnixMs::now();
    daemon
        .enqueue(Intake::Queue, vec![event("r", "d1")], now, UnixMs(0))
        .await
        .unwrap();
    let id = daemon.claim(now, 10, None).await.unwrap()[0].id;
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lease = async || -> i64 {
        client
            .query_one("SELECT lease_until_ms FROM events WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0)
    };
    let first = lease().await;
    assert_eq!(first, now.plus_ms(1_000).as_i64());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while lease().await <= first {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease was never renewed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_refuses_a_server_without_tls() {
    let test = "sslmode_require_refuses_a_server_without_tls";
    let Some(server) = tokio::task::spawn_blocking(move || PgServer::start(test))
        .await
        .unwrap()
    else {
        return;
    };
    let url = format!("{} sslmode=require", server.url());
    let refused = PostgresStore::connect(
        &url,
        Default::default(),
        2,
        LEASE_SECS,
        Role::Command,
        crate::providers::redecode,
    )
    .await
    .err()
    .expect("a server without TLS is refused under sslmode=require");
    let StoreError::Unavailable(reason) = &refused else {
        panic!("{refused:?}");
    };
    assert!(
        reason.contains("sslmode require") && reason.contains("does not support TLS"),
        "{reason}"
    );
    // The same server without the demand is fine: `prefer` falls back.
    let url = format!("{} sslmode=prefer", server.url());
    PostgresStore::connect(
        &url,
        Default::default(),
        2,
        LEASE_SECS,
        Role::Command,
        crate::providers::redecode,
    )
    .await
    .unwrap();
}

/// Admissions that arrive together are written together: the same
/// delivery id in several of them is stored once, each other once, and
/// each caller learns which of its own events were stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admissions_at_once_store_each_delivery_once() {
    let Some((_server, store)) = open("admissions_at_once_store_each_delivery_once").await else {
        return;
    };
    // Each id five times, each request two ids, all at once.
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let store = Arc::clone(&store);
            let events = vec![
                event("r", &format!("d{}", i % 20)),
                event("r", &format!("e{}", i % 20)),
            ];
            let intake = if i % 2 == 0 {
                Intake::Queue
            } else {
                Intake::Claim
            };
            tokio::spawn(async move {
                store
                    .enqueue(intake, events, UnixMs(1_000), UnixMs(0))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut stored = Vec::new();
    for request in requests {
        let admissions = request.await.unwrap();
        assert_eq!(admissions.len(), 2, "one admission per event");
        stored.extend(admissions.into_iter().filter_map(|a| match a {
            Admission::Queued(id) => Some(id),
            Admission::Duplicate => None,
        }));
    }
    stored.sort_unstable();
    stored.dedup();
    assert_eq!(stored.len(), 40, "each delivery id stored once: {stored:?}");
    assert_eq!(store.depth().await.unwrap(), 40);
    // Seen at 1, before a window from 2: stored again, and its repeat
    // within the same request is a duplicate of that.
    let later = || {
        let mut event = event("r", "d0");
        event.source.received_at_ms = 3_000;
        event
    };
    let again = store
        .enqueue(
            Intake::Queue,
            vec![later(), later()],
            UnixMs(3_000),
            UnixMs(2),
        )
        .await
        .unwrap();
    assert!(matches!(again[0], Admission::Queued(_)), "{again:?}");
    assert_eq!(
        again[1],
        Admission::Duplicate,
        "the second within its request"
    );
}

/// A request the database refuses fails alone; the requests written in
/// the same batch are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_admission_fails_alone() {
    let Some((_server, store)) = open("a_refused_admission_fails_alone").await else {
        return;
    };
    let requests: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            let mut event = event("r", &format!("d{i}"));
            if i == 7 {
                // PostgreSQL's text holds no NUL character.
                event.source.delivery_id = "bad\0id".to_owned();
            }
            tokio::spawn(async move {
                store
                    .enqueue(Intake::Queue, vec![event], UnixMs(1_000), UnixMs(0))
                    .await
            })
        })
        .collect();
    for (i, request) in requests.into_iter().enumerate() {
        let result = request.await.unwrap();
        if i == 7 {
            assert!(result.is_err(), "{result:?}");
        } else {
            assert!(
                matches!(result.as_deref(), Ok([Admission::Queued(_)])),
                "request {i}: {result:?}"
            );
        }
    }
    assert_eq!(store.depth().await.unwrap(), 39);
}
