//! What the admin API lists and counts, on every backend: filters by
//! status, route, kind and time, a search of delivery ids and bodies,
//! keyset pages newest first, and the rows the charts count.

use std::sync::Arc;

use super::event;
use crate::event::Event;
use crate::store::{Filter, Intake, Outcome, Status, Store, UnixMs};

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
