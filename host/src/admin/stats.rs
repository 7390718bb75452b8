//! The console's charts: per route, over a window cut into buckets, the
//! events received, those that failed (dead or failed inline), and the
//! plugins' p50/p99 latency (each event's duration: a respond route's
//! answer, a queued event's latest attempt). Counted from the store, so
//! that every instance on a shared database shows the same.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::store::{Activity, Status, Store, StoreError, UnixMs};

/// Buckets a window is cut into.
const BUCKETS: u64 = 12;

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub window_secs: u64,
    pub bucket_secs: u64,
    /// The start of the first bucket.
    pub since_ms: u64,
    pub routes: Vec<RouteStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    pub route: String,
    /// Events in the window by status.
    pub counts: BTreeMap<&'static str, u64>,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Bucket {
    pub start_ms: u64,
    pub requests: u64,
    pub failures: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The stats of the `window` before now.
pub async fn compute(store: &dyn Store, window: Duration) -> Result<Stats, StoreError> {
    let now = UnixMs::now().0;
    let window_ms = window.as_millis() as u64;
    let since = now.saturating_sub(window_ms);
    let rows = store.activity(UnixMs(since)).await?;
    Ok(tally(&rows, since, window_ms))
}

/// One route's counts by status, and its buckets with the durations
/// logged in each.
type Counting = (BTreeMap<&'static str, u64>, Vec<(Bucket, Vec<u64>)>);

/// Counts `rows` into [`BUCKETS`] buckets from `since` over `window_ms`.
pub fn tally(rows: &[Activity], since: u64, window_ms: u64) -> Stats {
    let bucket_ms = (window_ms / BUCKETS).max(1);
    let mut by_route: BTreeMap<&str, Counting> = BTreeMap::new();
    for row in rows {
        let (counts, buckets) = by_route.entry(&row.route).or_insert_with(|| {
            let buckets = (0..BUCKETS)
                .map(|i| {
                    let bucket = Bucket {
                        start_ms: since + i * bucket_ms,
                        ..Bucket::default()
                    };
                    (bucket, Vec::new())
                })
                .collect();
            (BTreeMap::new(), buckets)
        });
        *counts.entry(row.status.as_str()).or_default() += 1;
        let i = ((row.received_at_ms.saturating_sub(since)) / bucket_ms).min(BUCKETS - 1);
        let (bucket, durations) = &mut buckets[i as usize];
        bucket.requests += 1;
        if matches!(row.status, Status::Dead | Status::Failed) {
            bucket.failures += 1;
        }
        if let Some(us) = row.duration_us {
            durations.push(us);
        }
    }
    let routes = by_route
        .into_iter()
        .map(|(route, (counts, buckets))| RouteStats {
            route: route.to_owned(),
            counts,
            buckets: buckets
                .into_iter()
                .map(|(mut bucket, mut durations)| {
                    durations.sort_unstable();
                    bucket.p50_ms = percentile(&durations, 50);
                    bucket.p99_ms = percentile(&durations, 99);
                    bucket
                })
                .collect(),
        })
        .collect();
    Stats {
        window_secs: window_ms / 1000,
        bucket_secs: bucket_ms / 1000,
        since_ms: since,
        routes,
    }
}

/// The `p`th percentile of sorted microseconds, in milliseconds (nearest
/// rank).
fn percentile(sorted_us: &[u64], p: usize) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = (p * sorted_us.len()).div_ceil(100).max(1) - 1;
    Some(sorted_us[rank.min(sorted_us.len() - 1)] as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(route: &str, status: Status, at: u64, us: Option<u64>) -> Activity {
        Activity {
            route: route.into(),
            status,
            received_at_ms: at,
            duration_us: us,
        }
    }

    #[test]
    fn events_fall_in_their_buckets_with_failures_and_percentiles() {
        let mut rows = vec![
            row("a", Status::Delivered, 1_000, Some(4_000)),
            row("a", Status::Dead, 1_500, Some(2_000)),
            row("a", Status::Queued, 1_600, None),
            row("b", Status::Responded, 11_000, Some(1_000)),
        ];
        rows.extend((1..=100).map(|i| row("b", Status::Responded, 11_500, Some(i * 1000))));
        let stats = tally(&rows, 0, 12_000);
        assert_eq!(stats.bucket_secs, 1);
        let a = &stats.routes[0];
        assert_eq!(a.route, "a");
        assert_eq!(a.buckets[1].requests, 3);
        assert_eq!(a.buckets[1].failures, 1);
        assert_eq!(a.counts["dead"], 1);
        // A queue route's attempts count; an event not yet attempted does not.
        assert_eq!(a.buckets[1].p50_ms, Some(2.0));
        assert_eq!(a.buckets[1].p99_ms, Some(4.0));
        let b = &stats.routes[1];
        assert_eq!(b.buckets[11].requests, 101);
        assert_eq!(b.buckets[11].p50_ms, Some(50.0));
        assert_eq!(b.buckets[11].p99_ms, Some(99.0));
        assert_eq!(b.buckets[0].p50_ms, None);
    }
}
