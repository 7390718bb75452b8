//! The limits plugin instances run under: [`Limits`] from `[plugins]`,
//! and the per-instance resource limiter, a memory cap that traps with a
//! clear message, and the peak it saw, so a pooled instance that grew too
//! much is not reused.

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

use crate::config::PluginsConfig;

/// Elements a table may hold, pooled or growing: interpreters compiled to
/// wasm (Python, JavaScript) have tens of thousands of functions.
pub(super) const MAX_TABLE_ELEMENTS: usize = 1 << 18;

/// The limits every instance of every plugin runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: usize,
    pub timeout: Duration,
    pub pool_size: usize,
    /// Bytes of linear memory a plugin's instances may hold (see
    /// [`super::pool`]).
    pub memory_budget: usize,
    /// An idle instance is dropped after this long unused.
    pub idle_after: Duration,
    pub max_events_per_instance: u64,
}

impl From<&PluginsConfig> for Limits {
    fn from(c: &PluginsConfig) -> Self {
        Self {
            memory_bytes: mib(c.memory_mb),
            timeout: c.timeout(),
            pool_size: c.pool_size,
            memory_budget: mib(c.memory_budget_mb),
            idle_after: Duration::from_secs(c.instance_idle_secs),
            max_events_per_instance: c.max_events_per_instance.max(1),
        }
    }
}

/// `mib` MiB in bytes.
pub(super) fn mib(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// A store's data that carries its memory cap and the current call's
/// deadline: a plugin's and a provider plugin's.
pub(super) trait Bounded: Send + 'static {
    fn memory_cap(&mut self) -> &mut MemoryCap;
    fn deadline(&self) -> Instant;
}

/// Puts `store` under its data's memory cap and call deadline. Each epoch
/// tick past the deadline interrupts the call (a trap); before it, the
/// call yields, so that a long one shares the async workers.
pub(super) fn bound<T: Bounded>(store: &mut Store<T>) {
    store.limiter(|data| data.memory_cap() as &mut dyn ResourceLimiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline() {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

#[derive(Debug)]
pub struct MemoryCap {
    cap: usize,
    peak: usize,
}

impl MemoryCap {
    pub fn new(cap: usize) -> Self {
        Self { cap, peak: 0 }
    }

    /// The largest linear memory this instance has had, in bytes.
    pub fn peak(&self) -> usize {
        self.peak
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            // A trap rather than a failed grow: guests rarely handle the
            // failure, and the error names the limit.
            return Err(wasmtime::format_err!(
                "memory cap of {} MiB reached (plugins.memory_mb)",
                self.cap / (1024 * 1024)
            ));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
