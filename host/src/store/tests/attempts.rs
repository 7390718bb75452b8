//! Each queued event's attempts' history, on every backend.

use std::sync::Arc;

use super::event;
use crate::store::{Attempt, Finished, Intake, Outcome, Store, UnixMs};

fn attempt(number: u32, started: u64, finished: u64, outcome: &str) -> Attempt {
    Attempt {
        number,
        started_at_ms: started,
        finished_at_ms: finished,
        outcome: outcome.into(),
        error: None,
        plugin: None,
    }
}

pub(super) async fn every_attempt_is_kept_with_its_times_error_and_plugin(store: Arc<dyn Store>) {
    store
        .enqueue(
            Intake::Queue,
            vec![event("r", "d1"), event("w", "d2")],
            UnixMs(1_000),
            UnixMs(0),
        )
        .await
        .unwrap();
    let claimed = store.claim(UnixMs(1_000), 10, None).await.unwrap();
    let (id, waits) = (claimed[0].id, claimed[1].id);
    let retry = Finished {
        id,
        outcome: Outcome::Retry {
            error: "plugin `crm`: unavailable".into(),
            at: UnixMs(2_000),
        },
        started: Some(UnixMs(1_100)),
        plugin: Some("crm".into()),
        duration_us: Some(150_000),
    };
    // Waiting for a route is no attempt.
    let wait = Finished::from((waits, Outcome::Wait));
    store
        .finish_attempts(vec![retry, wait], UnixMs(1_250))
        .await
        .unwrap();
    assert!(store.attempts(waits).await.unwrap().is_empty());

    // Route `w` is not configured any more: its event waits.
    let r = Some(vec!["r".to_owned()]);
    let claimed = store.claim(UnixMs(2_000), 10, r.clone()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    let delivered = Finished {
        id,
        outcome: Outcome::Delivered,
        started: Some(UnixMs(2_010)),
        plugin: None,
        duration_us: Some(9_500),
    };
    store
        .finish_attempts(vec![delivered], UnixMs(2_020))
        .await
        .unwrap();
    let first = Attempt {
        error: Some("plugin `crm`: unavailable".into()),
        plugin: Some("crm".into()),
        ..attempt(1, 1_100, 1_250, "retry")
    };
    assert_eq!(
        store.attempts(id).await.unwrap(),
        vec![first.clone(), attempt(2, 2_010, 2_020, "delivered")]
    );

    // The latest attempt's duration is the record's, which the charts'
    // percentiles count for queue routes as for respond routes.
    let (record, _) = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.duration_us, Some(9_500));
    let activity = store.activity(UnixMs(0)).await.unwrap();
    let mut durations: Vec<Option<u64>> = activity.iter().map(|a| a.duration_us).collect();
    durations.sort();
    assert_eq!(durations, vec![None, Some(9_500)]);

    // A replay counts afresh, after the history it keeps.
    store.replay(vec![id], UnixMs(3_000)).await.unwrap();
    let claimed = store.claim(UnixMs(3_000), 10, r).await.unwrap();
    let replayed: Vec<Finished> = claimed
        .iter()
        .filter(|c| c.id == id)
        .map(|c| Finished {
            id: c.id,
            outcome: Outcome::Dead {
                error: "plugin `crm`: dropped".into(),
            },
            started: Some(UnixMs(3_001)),
            plugin: Some("crm".into()),
            duration_us: None,
        })
        .collect();
    store
        .finish_attempts(replayed, UnixMs(3_002))
        .await
        .unwrap();
    let attempts = store.attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(
        attempts[2],
        Attempt {
            error: Some("plugin `crm`: dropped".into()),
            plugin: Some("crm".into()),
            ..attempt(1, 3_001, 3_002, "dead")
        }
    );

    // The history goes with its event.
    assert_eq!(store.purge_dead(vec![id]).await.unwrap(), 1);
    assert!(store.attempts(id).await.unwrap().is_empty());
}
