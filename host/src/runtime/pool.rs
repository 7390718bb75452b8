//! A plugin's warm instances, bounded by memory rather than by count: how
//! many may exist at once ([`capacity`]: its `pool_size`, and no more
//! than its `memory_budget_mb` holds at the size an instance starts at),
//! which idle ones are kept for the next event (as many as the budget
//! holds at the size each has grown to, and always one), and dropping the
//! ones left idle for `instance_idle_secs`, so that a plugin that went
//! quiet gives its memory back.
//!
//! An interpreter's instance (Python, JavaScript) is megabytes of linear
//! memory that its calls dirty, resident for as long as the instance
//! lives; a Rust plugin's is about a megabyte. A count that suits one
//! wastes memory on the other.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

/// How many instances of a plugin may exist at once: as many as `budget`
/// bytes hold at `instance_bytes` each (the size an instance starts at,
/// when the component declares it), at least one and at most `pool_size`.
pub(super) fn capacity(pool_size: usize, budget: usize, instance_bytes: Option<usize>) -> usize {
    let by_budget = match instance_bytes {
        Some(bytes) if bytes > 0 => budget / bytes,
        _ => pool_size,
    };
    by_budget.clamp(1, pool_size.max(1))
}

/// The idle instances of one plugin, newest last.
pub(super) struct Pool<T: Send + 'static> {
    idle: Arc<Mutex<Idle<T>>>,
    budget: usize,
    idle_after: Duration,
}

struct Idle<T> {
    parked: Vec<Parked<T>>,
    /// The sum of the parked instances' sizes.
    bytes: usize,
    /// A task is dropping the ones idle too long (see [`sweep`]).
    sweeping: bool,
}

struct Parked<T> {
    item: T,
    bytes: usize,
    since: Instant,
}

impl<T: Send + 'static> Pool<T> {
    /// Idle instances whose sizes add up to at most `budget` bytes (or
    /// one, whatever its size), each dropped after `idle_after` unused.
    pub(super) fn new(budget: usize, idle_after: Duration) -> Self {
        Self {
            idle: Arc::new(Mutex::new(Idle {
                parked: Vec::new(),
                bytes: 0,
                sweeping: false,
            })),
            budget,
            idle_after,
        }
    }

    /// The instance used last, whose pages are likeliest to be in cache.
    pub(super) fn take(&self) -> Option<T> {
        let mut idle = self.lock();
        let parked = idle.parked.pop()?;
        idle.bytes -= parked.bytes;
        Some(parked.item)
    }

    /// Keeps `item`, an instance of `bytes` of memory, for the next event;
    /// or gives it back when the idle ones would outgrow the budget, for
    /// the caller to drop after the lock is released.
    pub(super) fn put(&self, item: T, bytes: usize) -> Option<T> {
        let (refused, start_sweeping) = self.put_at(item, bytes, Instant::now());
        // Outside a runtime (never on the daemon's call path) nothing
        // sweeps, and the pool keeps what the budget allows.
        if start_sweeping {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(sweep(Arc::downgrade(&self.idle), self.idle_after));
                }
                Err(_) => self.lock().sweeping = false,
            }
        }
        refused
    }

    /// [`Self::put`] at `now`; also whether a sweeper should start.
    fn put_at(&self, item: T, bytes: usize, now: Instant) -> (Option<T>, bool) {
        let mut idle = self.lock();
        if !idle.parked.is_empty() && idle.bytes.saturating_add(bytes) > self.budget {
            return (Some(item), false);
        }
        idle.bytes += bytes;
        idle.parked.push(Parked {
            item,
            bytes,
            since: now,
        });
        let start_sweeping = !idle.sweeping;
        idle.sweeping = true;
        (None, start_sweeping)
    }

    /// Instances idle now.
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.lock().parked.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<T>> {
        self.idle.lock().expect("plugin pool poisoned")
    }
}

/// Drops the instances left idle for `idle_after`, waking when the oldest
/// is due; ends when none is left (the next [`Pool::put`] starts another)
/// or the plugin is gone (a reload replaced it).
async fn sweep<T>(idle: Weak<Mutex<Idle<T>>>, idle_after: Duration) {
    loop {
        let next = {
            let Some(idle) = idle.upgrade() else { return };
            let (stale, next) = {
                let mut idle = idle.lock().expect("plugin pool poisoned");
                idle.take_stale(Instant::now(), idle_after)
            };
            // Dropped outside the lock: freeing an interpreter's store
            // takes a while, and calls would wait on it.
            drop(stale);
            next
        };
        match next {
            Some(due) => tokio::time::sleep_until(due).await,
            None => return,
        }
    }
}

impl<T> Idle<T> {
    /// Takes out the instances idle for `idle_after` at `now`; says when
    /// the next one is due, or, none being left, that sweeping ends.
    fn take_stale(&mut self, now: Instant, idle_after: Duration) -> (Vec<T>, Option<Instant>) {
        // Oldest first: each use parks an instance at the top.
        let count = self
            .parked
            .iter()
            .take_while(|parked| parked.since + idle_after <= now)
            .count();
        let stale: Vec<_> = self.parked.drain(..count).collect();
        self.bytes -= stale.iter().map(|parked| parked.bytes).sum::<usize>();
        let next = self.parked.first().map(|oldest| oldest.since + idle_after);
        self.sweeping = next.is_some();
        (stale.into_iter().map(|parked| parked.item).collect(), next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn capacity_is_what_the_budget_holds_within_the_pool_size() {
        const MIB: usize = 1 << 20;
        // An 11 MiB interpreter instance in 32 MiB: two.
        assert_eq!(capacity(16, 32 * MIB, Some(11 * MIB)), 2);
        // A small Rust instance: the pool size bounds it.
        assert_eq!(capacity(16, 32 * MIB, Some(MIB + MIB / 16)), 16);
        // Larger than the whole budget: still one.
        assert_eq!(capacity(16, 32 * MIB, Some(40 * MIB)), 1);
        // Undeclared size: the pool size alone.
        assert_eq!(capacity(4, 32 * MIB, None), 4);
    }

    #[test]
    fn idle_instances_stay_within_the_budget_and_one_is_always_kept() {
        let pool = Pool::new(25, IDLE);
        assert_eq!(pool.put("a", 10), None);
        assert_eq!(pool.put("b", 10), None);
        // A third would make 30 bytes idle.
        assert_eq!(pool.put("c", 10), Some("c"));
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.take(), Some("b"), "the last one used comes first");
        assert_eq!(pool.put("d", 15), None, "25 bytes fit");
        assert_eq!(pool.take(), Some("d"));
        assert_eq!(pool.take(), Some("a"));
        assert_eq!(pool.take(), None);
        // Alone, an instance over the whole budget is kept: a plugin whose
        // one instance is larger still reuses it.
        assert_eq!(pool.put("big", 100), None);
        assert_eq!(pool.put("e", 1), Some("e"));
    }

    #[test]
    fn instances_left_idle_are_dropped_and_used_ones_are_not() {
        let pool = Pool::new(1 << 20, IDLE);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let sweep = |now| pool.lock().take_stale(now, IDLE);
        assert_eq!(pool.put_at("old", 1, at(0)), (None, true));
        assert_eq!(pool.put_at("new", 1, at(30)), (None, false), "one sweeper");
        // Nothing is due before its time; the oldest is due first.
        assert_eq!(sweep(at(59)), (vec![], Some(at(60))));
        // "old" has been idle for IDLE, "new" for half of it.
        assert_eq!(sweep(at(60)), (vec!["old"], Some(at(90))));
        // Used again, "new" starts a fresh idle period.
        assert_eq!(pool.take(), Some("new"));
        assert_eq!(pool.put_at("new", 1, at(70)), (None, false));
        assert_eq!(sweep(at(90)), (vec![], Some(at(130))));
        // The last one goes, and the sweeper with it; the next put starts
        // another.
        assert_eq!(sweep(at(130)), (vec!["new"], None));
        assert_eq!(pool.idle(), 0);
        assert_eq!(pool.put_at("later", 1, at(200)), (None, true));
    }

    #[tokio::test]
    async fn the_sweeper_ends_with_its_plugin() {
        let pool = Pool::new(1 << 20, IDLE);
        pool.put((), 1);
        let idle = Arc::downgrade(&pool.idle);
        drop(pool);
        // Only the sweeper's handle is left, and it does not hold the
        // instances alive.
        assert!(idle.upgrade().is_none(), "the sweeper kept the pool alive");
    }
}
