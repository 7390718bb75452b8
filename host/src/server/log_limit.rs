//! Rate limits for the lines the front door writes about requests it
//! turns away (`request refused`, `no route for path`), so that a flood of
//! bad requests cannot flood the log (and have journald drop the lines
//! that matter). Each kind of line (route and status of a refusal; every
//! unknown path together) has a token bucket: a burst of lines, then a
//! line a second. What was suppressed is counted and logged as one
//! `similar lines suppressed` line, before the kind's next line or within
//! [`REPORT_EVERY`], whichever comes first. Metrics still count every
//! request; only the log lines are limited.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::text;

/// Lines of one kind written at once before the limit applies.
const BURST: u32 = 20;
/// Lines of one kind written a second once the burst is spent.
const PER_SEC: f64 = 1.0;
/// Kinds tracked at most: routes are few and so are statuses, but a
/// series of reloads renaming routes must not grow the map for ever.
const MAX_KINDS: usize = 1024;
/// How often counts of suppressed lines are written when no line of
/// their kind comes to carry them.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Bytes of a request's path a log line shows.
const MAX_PATH_BYTES: usize = 200;

/// The process's limiter: the log is the process's too.
static LIMITER: LazyLock<Limiter> = LazyLock::new(|| Limiter::new(BURST, PER_SEC, MAX_KINDS));
static REPORTER: Once = Once::new();

/// A kind of line, limited apart from the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `request refused` on a route, with a status.
    Refused { route: Arc<str>, status: u16 },
    /// `no route for path`, whatever the path.
    NoRoute,
}

/// Whether a `request refused` line for `route` and `status` may be
/// written now.
pub fn refusal(route: &Arc<str>, status: StatusCode) -> bool {
    allow(Kind::Refused {
        route: route.clone(),
        status: status.as_u16(),
    })
}

/// Whether a `no route for path` line may be written now.
pub fn no_route() -> bool {
    allow(Kind::NoRoute)
}

/// A request's path as a log line shows it: cut after
/// [`MAX_PATH_BYTES`], with a marker.
pub fn path(path: &str) -> Cow<'_, str> {
    text::truncate(path, MAX_PATH_BYTES)
}

fn allow(kind: Kind) -> bool {
    match LIMITER.allow(&kind, Instant::now()) {
        Some(suppressed) => {
            if suppressed > 0 {
                report(&kind, suppressed);
            }
            true
        }
        None => {
            start_reporter();
            false
        }
    }
}

fn report(kind: &Kind, suppressed: u64) {
    match kind {
        Kind::Refused { route, status } => tracing::warn!(
            line = "request refused",
            %route,
            status,
            suppressed,
            "similar lines suppressed"
        ),
        Kind::NoRoute => tracing::info!(
            line = "no route for path",
            suppressed,
            "similar lines suppressed"
        ),
    }
}

/// At the first suppressed line: a task that writes the counts no line
/// has carried within [`REPORT_EVERY`].
fn start_reporter() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    REPORTER.call_once(|| {
        runtime.spawn(async {
            let mut ticks = tokio::time::interval(REPORT_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                for (kind, suppressed) in LIMITER.take_suppressed() {
                    report(&kind, suppressed);
                }
            }
        });
    });
}

/// Token buckets by kind of line.
pub struct Limiter {
    burst: f64,
    per_sec: f64,
    max_kinds: usize,
    buckets: Mutex<HashMap<Kind, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    /// Lines refused since the last one written or reported.
    suppressed: u64,
}

impl Limiter {
    pub fn new(burst: u32, per_sec: f64, max_kinds: usize) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec,
            max_kinds,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)` when a line of `kind` may be written at `now`, `n` being
    /// how many were suppressed since the last one; `None` when it is
    /// suppressed (and counted).
    pub fn allow(&self, kind: &Kind, now: Instant) -> Option<u64> {
        let mut buckets = self.buckets.lock().expect("log limiter poisoned");
        if !buckets.contains_key(kind) && buckets.len() >= self.max_kinds {
            // A bucket that is full again with nothing to report is the
            // same as no bucket.
            buckets
                .retain(|_, bucket| bucket.suppressed > 0 || self.refill(bucket, now) < self.burst);
            if buckets.len() >= self.max_kinds {
                // Every kind has something to report: this one goes
                // unlimited rather than growing the map.
                return Some(0);
            }
        }
        let bucket = buckets.entry(kind.clone()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
            suppressed: 0,
        });
        if self.refill(bucket, now) < 1.0 {
            bucket.suppressed += 1;
            return None;
        }
        bucket.tokens -= 1.0;
        Some(std::mem::take(&mut bucket.suppressed))
    }

    /// Every kind's count of suppressed lines not yet reported, reset.
    pub fn take_suppressed(&self) -> Vec<(Kind, u64)> {
        let mut buckets = self.buckets.lock().expect("log limiter poisoned");
        buckets
            .iter_mut()
            .filter(|(_, bucket)| bucket.suppressed > 0)
            .map(|(kind, bucket)| (kind.clone(), std::mem::take(&mut bucket.suppressed)))
            .collect()
    }

    /// Adds the tokens earned since the last refill; returns the tokens.
    fn refill(&self, bucket: &mut Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.refilled);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.burst);
        bucket.refilled = now;
        bucket.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(route: &str, status: u16) -> Kind {
        Kind::Refused {
            route: route.into(),
            status,
        }
    }

    #[test]
    fn a_burst_then_a_line_a_second_with_the_count_suppressed() {
        let limiter = Limiter::new(3, 1.0, 16);
        let start = Instant::now();
        let kind = refused("orders", 401);
        for _ in 0..3 {
            assert_eq!(limiter.allow(&kind, start), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(limiter.allow(&kind, start), None);
        }
        // Half a second earns half a line: still suppressed.
        assert_eq!(
            limiter.allow(&kind, start + Duration::from_millis(500)),
            None
        );
        // A second after the burst: one line, carrying the six suppressed.
        assert_eq!(
            limiter.allow(&kind, start + Duration::from_secs(1)),
            Some(6)
        );
        assert_eq!(limiter.allow(&kind, start + Duration::from_secs(1)), None);
        // A long quiet time refills the burst, no more.
        let later = start + Duration::from_secs(3600);
        assert_eq!(limiter.allow(&kind, later), Some(1));
        assert_eq!(limiter.allow(&kind, later), Some(0));
        assert_eq!(limiter.allow(&kind, later), Some(0));
        assert_eq!(limiter.allow(&kind, later), None);
    }

    #[test]
    fn kinds_are_limited_apart() {
        let limiter = Limiter::new(1, 1.0, 16);
        let now = Instant::now();
        assert_eq!(limiter.allow(&refused("a", 401), now), Some(0));
        assert_eq!(limiter.allow(&refused("a", 401), now), None);
        assert_eq!(limiter.allow(&refused("a", 413), now), Some(0));
        assert_eq!(limiter.allow(&refused("b", 401), now), Some(0));
        assert_eq!(limiter.allow(&Kind::NoRoute, now), Some(0));
        assert_eq!(limiter.allow(&Kind::NoRoute, now), None);
    }

    #[test]
    fn suppressed_counts_are_reported_once() {
        let limiter = Limiter::new(1, 1.0, 16);
        let now = Instant::now();
        let kind = refused("a", 401);
        limiter.allow(&kind, now);
        limiter.allow(&kind, now);
        limiter.allow(&kind, now);
        limiter.allow(&Kind::NoRoute, now);
        assert_eq!(limiter.take_suppressed(), vec![(kind.clone(), 2)]);
        assert_eq!(limiter.take_suppressed(), vec![]);
        // Reported already: the next line carries nothing.
        assert_eq!(limiter.allow(&kind, now + Duration::from_secs(1)), Some(0));
    }

    #[test]
    fn the_number_of_kinds_is_bounded() {
        let limiter = Limiter::new(1, 1.0, 2);
        let now = Instant::now();
        let (a, b, c) = (refused("a", 401), refused("b", 401), refused("c", 401));
        limiter.allow(&a, now);
        limiter.allow(&a, now);
        limiter.allow(&b, now);
        limiter.allow(&b, now);
        // Both tracked kinds have counts to report: `c` is not tracked.
        assert_eq!(limiter.allow(&c, now), Some(0));
        assert_eq!(limiter.allow(&c, now), Some(0));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 2);
        // Once reported and refilled, they make room.
        limiter.take_suppressed();
        let later = now + Duration::from_secs(1);
        assert_eq!(limiter.allow(&c, later), Some(0));
        assert_eq!(limiter.allow(&c, later), None);
        assert!(limiter.buckets.lock().unwrap().len() <= 2);
    }
}
