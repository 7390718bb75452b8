//! What operators do to the delivery log, one implementation for both
//! faces of it: the CLI (`wirehook replay`, `dead-letters`) and the admin
//! API the console calls.

use crate::store::{Filter, Status, Store, StoreError, UnixMs};

/// Dead letters by id, or every one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Ids(Vec<i64>),
    All,
}

/// What a replay did: the ids re-queued, and those asked for that were
/// not (unknown, or being delivered right now).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replayed {
    pub replayed: Vec<i64>,
    pub missing: Vec<i64>,
}

/// Re-queues `ids` (dead or not) for an immediate attempt.
pub async fn replay(store: &dyn Store, ids: Vec<i64>) -> Result<Replayed, StoreError> {
    let found = store.replay(ids.clone(), UnixMs::now()).await?;
    let missing = ids.into_iter().filter(|id| !found.contains(id)).collect();
    Ok(Replayed {
        replayed: found,
        missing,
    })
}

/// The dead letters among the ids selected, or every dead letter.
pub async fn dead_ids(store: &dyn Store, selection: Selection) -> Result<Vec<i64>, StoreError> {
    let dead: Vec<i64> = store
        .list(Filter {
            status: Some(Status::Dead),
            ..Filter::default()
        })
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    Ok(match selection {
        Selection::All => dead,
        Selection::Ids(ids) => ids.into_iter().filter(|id| dead.contains(id)).collect(),
    })
}

/// Re-queues the dead letters selected; ids that are not dead letters
/// are left alone.
pub async fn replay_dead(store: &dyn Store, selection: Selection) -> Result<Replayed, StoreError> {
    let dead = dead_ids(store, selection).await?;
    replay(store, dead).await
}

/// Deletes the dead letters selected; returns how many.
pub async fn purge_dead(store: &dyn Store, selection: Selection) -> Result<u64, StoreError> {
    store
        .purge_dead(match selection {
            Selection::All => Vec::new(),
            // An empty list would mean every one.
            Selection::Ids(ids) if ids.is_empty() => return Ok(0),
            Selection::Ids(ids) => ids,
        })
        .await
}
