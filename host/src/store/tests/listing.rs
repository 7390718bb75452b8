//! What the admin API lists and counts, on every backend: filters by
//! status, route, kind and time, a search of delivery ids and bodies,
//! keyset pages newest first, and the rows the charts count.

use std::sync::Arc;

use super::event;
use crate::event::Event;
use crate::store::{DeliveryLog, Filter, Intake, Outcome, Queue, Status, Store, UnixMs};

/// `event` with a contact name of its own in its body.
fn named(route: &str, delivery_id: &str, name: &str, at: u64) -> Event {
    let mut e = event(route, delivery_id);
    e.raw_json = format!(
        r#"{{"contact":{{"uuid":"c-{delivery_id}","name":"{name}"}},"input":{{"text":"CU001"}}}}"#
    );
    e.source.received_at_ms = at;
    e
}

fn ids(records: &[crate::store::Record]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

pub(super) async fn listings_filter_search_and_page_newest_first(store: Arc<dyn Store>) {
    let events = vec![
        named("a", "d1", "Ann 50%", 1_000),
        named("b", "d2", "Bob", 2_000),
        named("a", "d3", "Cat", 3_000),
        named("a", "special-d4", "Dan", 4_000),
    ];
    store
        .enqueue(Intake::Queue, events, UnixMs(5_000), UnixMs(0))
        .await
        .unwrap();
    let all = store.list(Filter::default()).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let (d1, d2, d4) = (all[3].id, all[2].id, all[0].id);
    let claimed = store.claim(UnixMs(5_000), 10, None).await.unwrap();
    let outcomes = claimed
        .iter()
        .map(|c| {
            let outcome = if c.id == d2 {
                Outcome::Dead {
                    error: "boom".into(),
                }
            } else {
                Outcome::Delivered
            };
            (c.id, outcome)
        })
        .collect();
    store.finish(outcomes, UnixMs(5_000)).await.unwrap();

    let list = |filter: Filter| {
        let store = store.clone();
        async move { ids(&store.list(filter).await.unwrap()) }
    };
    assert_eq!(
        list(Filter {
            status: Some(Status::Dead),
            ..Filter::default()
        })
        .await,
        vec![d2]
    );
    assert_eq!(
        list(Filter {
            route: Some("a".into()),
            limit: 2,
            ..Filter::default()
        })
        .await,
        vec![d4, all[1].id]
    );
    // The next page starts below the last id of the one before.
    assert_eq!(
        list(Filter {
            route: Some("a".into()),
            limit: 2,
            before: Some(all[1].id),
            ..Filter::default()
        })
        .await,
        vec![d1]
    );
    assert_eq!(
        list(Filter {
            kind: Some("nonesuch".into()),
            ..Filter::default()
        })
        .await,
        Vec::<i64>::new()
    );
    assert_eq!(
        list(Filter {
            since: Some(UnixMs(2_000)),
            until: Some(UnixMs(4_000)),
            ..Filter::default()
        })
        .await,
        vec![all[1].id, d2]
    );
    // Search: the body, ignoring ASCII case, and the delivery id; the
    // pattern's own wildcards are plain characters.
    let search = |q: &str| Filter {
        q: Some(q.into()),
        ..Filter::default()
    };
    assert_eq!(list(search("bOB")).await, vec![d2]);
    assert_eq!(list(search("special")).await, vec![d4]);
    assert_eq!(list(search("50%")).await, vec![d1]);
    assert_eq!(list(search("5_%")).await, Vec::<i64>::new());

    // The charts' rows: those received in the window, newest first.
    let activity = store.activity(UnixMs(2_000)).await.unwrap();
    let routes: Vec<(&str, Status, u64)> = activity
        .iter()
        .map(|a| (a.route.as_str(), a.status, a.received_at_ms))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("a", Status::Delivered, 4_000),
            ("a", Status::Delivered, 3_000),
            ("b", Status::Dead, 2_000),
        ]
    );
}

/// The listings the console makes, each with the index SQLite's plan must
/// name for it: none reads every row or every body.
fn indexed_listings() -> Vec<(Filter, &'static str)> {
    let page = |filter: Filter| Filter {
        limit: 50,
        before: Some(1_000_000),
        ..filter
    };
    vec![
        (
            page(Filter {
                q: Some("Ann 50%".into()),
                ..Filter::default()
            }),
            "event_search",
        ),
        (
            page(Filter {
                route: Some("a".into()),
                ..Filter::default()
            }),
            "events_by_route",
        ),
        (
            page(Filter {
                status: Some(Status::Dead),
                ..Filter::default()
            }),
            "events_dead",
        ),
        (
            page(Filter {
                status: Some(Status::Failed),
                ..Filter::default()
            }),
            "events_failed",
        ),
        (
            page(Filter {
                status: Some(Status::Queued),
                ..Filter::default()
            }),
            "events_pending",
        ),
    ]
}

#[tokio::test]
async fn sqlite_listings_walk_an_index() {
    let (_dir, store) = super::open();
    for (filter, index) in indexed_listings() {
        let plan = store.query_plan(filter.clone()).await.unwrap();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{filter:?}: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step == "SCAN events" || step.contains("event_bodies")),
            "{filter:?}: {plan:?}"
        );
    }
    // Punctuation alone has no word to look up: the search scans, and
    // still finds.
    let punctuation = Filter {
        q: Some("%_".into()),
        ..Filter::default()
    };
    let plan = store.query_plan(punctuation).await.unwrap();
    assert!(
        !plan.iter().any(|step| step.contains("event_search")),
        "{plan:?}"
    );
}

/// PostgreSQL plans by the table's statistics: on a log of 20,000 events,
/// analyzed, a rare word and a route's page read their indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listings_use_the_search_and_route_indexes() {
    let test = "postgres_listings_use_the_search_and_route_indexes";
    let Some(server) = tokio::task::spawn_blocking(move || super::postgres::PgServer::start(test))
        .await
        .unwrap()
    else {
        return;
    };
    let store = super::postgres::connect(&server).await;
    for batch in 0..20 {
        let events = (0..1_000)
            .map(|n| {
                let i = batch * 1_000 + n;
                named(
                    &format!("r{}", i % 50),
                    &format!("d{i}"),
                    &format!("Name{i}"),
                    1_000,
                )
            })
            .collect();
        store
            .enqueue(Intake::Queue, events, UnixMs(5_000), UnixMs(0))
            .await
            .unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute("ANALYZE events").await.unwrap();
    let cases = [
        (
            Filter {
                q: Some("name1234".into()),
                limit: 50,
                ..Filter::default()
            },
            "events_search",
        ),
        (
            Filter {
                route: Some("r7".into()),
                limit: 50,
                ..Filter::default()
            },
            "events_route",
        ),
    ];
    for (filter, index) in cases {
        let plan = store.query_plan(filter.clone()).await.unwrap();
        assert!(
            plan.iter().any(|line| line.contains(index)),
            "{filter:?}: {plan:#?}"
        );
    }
    let found = store
        .list(Filter {
            q: Some("name1234".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<String> = found.into_iter().map(|r| r.delivery_id).collect();
    ids.sort();
    let mut expected: Vec<String> = (0..20_000)
        .filter(|i| format!("name{i}").contains("name1234"))
        .map(|i| format!("d{i}"))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_file_laid_out_before_the_search_index_is_indexed_when_opened() {
    let (dir, store) = super::open();
    store
        .enqueue(
            Intake::Queue,
            vec![named("a", "d1", "Zora Old", 1_000)],
            UnixMs(5_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("wirehook.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER event_search_follow; DROP TABLE event_search; PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let store = crate::store::SqliteStore::open(dir.path(), crate::providers::redecode).unwrap();
    let found = store
        .list(Filter {
            q: Some("zora old".into()),
            ..Filter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&found), vec![1]);
}
