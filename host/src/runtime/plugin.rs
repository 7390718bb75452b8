//! One loaded plugin: its pre-instantiated component and a pool of warm
//! instances. An instance is reused across events (a fresh one costs
//! 10–60× a call) and thrown away after a trap, a timeout, a failure, too
//! many events or too much memory; `isolation = "event"` never reuses.
//!
//! At most [`pool::capacity`] instances of a plugin exist at once (its
//! `pool_size`, fewer when its memory budget holds fewer): a call beyond
//! that waits for one to come back (within its deadline) rather than
//! instantiating another that the full pool would then throw away. Under
//! load that is the difference between reusing warm instances and paying
//! an instantiation per event, which for an interpreter is milliseconds.
//! The idle ones are kept in a [`Pool`], which drops them when unused.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{Engine, Store, Trap};

use super::Limits;
use super::bindings::{Instance, PluginPre, types};
use super::host::{CallContext, Grants, State};
use super::limits::{self, MemoryCap};
use super::pool::{self, Pool};
use super::trial::Trial;
use super::version::WitVersion;
use crate::config::Isolation;
use crate::event::Event;

/// Extra time the async timeout gives over the epoch deadline: the epoch
/// trap is the normal path, the timeout catches a host call that hangs.
const TIMEOUT_GRACE: Duration = Duration::from_millis(50);

/// A plugin's answer to a `respond` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub json: String,
}

/// Why a call did not produce an answer. The event fails; the daemon and
/// the plugin's other instances carry on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("plugin asked to retry: {0}")]
    Retry(String),
    #[error("plugin dropped the event: {0}")]
    Drop(String),
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("plugin exceeded its deadline of {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
}

impl CallError {
    /// What a respond route's caller is told: the kind of failure, and a
    /// failure's reason as the plugin gave it, never what wirehook knows
    /// of the plugin's insides (a trap's backtrace, file names).
    pub fn summary(&self) -> Cow<'_, str> {
        match self {
            Self::Retry(_) | Self::Drop(_) | Self::Timeout(_) => Cow::Owned(self.to_string()),
            Self::Trap(_) => Cow::Borrowed("plugin trapped"),
            Self::Instantiate(_) => Cow::Borrowed("plugin could not be instantiated"),
        }
    }

    /// The failure's kind, without its reason.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Retry(_) => "retry",
            Self::Drop(_) => "drop",
            Self::Trap(_) => "trap",
            Self::Timeout(_) => "timeout",
            Self::Instantiate(_) => "instantiate",
        }
    }

    /// Worth another attempt later (everything but an explicit drop).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Drop(_))
    }
}

/// An event as a plugin is handed it: converted from wirehook's own
/// [`Event`] once for all of a route's plugins, and back when they are
/// done, moving its strings both ways.
#[derive(Debug)]
pub struct PluginEvent(types::Event);

impl PluginEvent {
    pub fn route(&self) -> &str {
        &self.0.source.route
    }

    pub fn delivery_id(&self) -> &str {
        &self.0.source.delivery_id
    }

    pub fn attempt(&self) -> u32 {
        self.0.source.attempt
    }
}

impl From<Event> for PluginEvent {
    fn from(event: Event) -> Self {
        Self(event.into())
    }
}

impl From<PluginEvent> for Event {
    fn from(event: PluginEvent) -> Self {
        event.0.into()
    }
}

struct Warm {
    store: Store<State>,
    instance: Instance,
    events: u64,
}

/// What a plugin is granted, as the admin API shows it: no secret, not
/// even a setting's length.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Granted {
    pub settings: Vec<String>,
    pub kv: bool,
    pub http: Vec<String>,
}

pub struct Plugin {
    /// Shared, so that metrics label a call without allocating.
    name: Arc<str>,
    engine: Engine,
    pre: PluginPre,
    grants: Arc<Grants>,
    isolation: Isolation,
    limits: Limits,
    pool: Pool<Warm>,
    /// One permit per instance that may exist at once.
    slots: Semaphore,
    /// How many that is: what the memory budget holds at
    /// `instance_bytes` each, within `pool_size`.
    capacity: AtomicUsize,
    /// The largest an instance has been, or the size one starts with.
    instance_bytes: AtomicUsize,
    /// Permits over `capacity` still held by calls, forgotten as they
    /// come back.
    retire: AtomicUsize,
    /// Calls waiting for a permit: a pool too small for the load.
    waiting: AtomicUsize,
    /// Loaded from its precompiled artifact rather than compiled.
    precompiled: bool,
}

impl Plugin {
    pub(super) fn new(
        engine: Engine,
        pre: PluginPre,
        grants: Arc<Grants>,
        isolation: Isolation,
        limits: Limits,
        instance_bytes: Option<usize>,
    ) -> Self {
        let capacity = pool::capacity(limits.pool_size, limits.memory_budget, instance_bytes);
        tracing::debug!(
            plugin = %grants.plugin,
            instance_bytes,
            capacity,
            "instances at once: the pool size, or what the memory budget holds"
        );
        Self {
            name: Arc::from(grants.plugin.as_str()),
            engine,
            pre,
            grants,
            isolation,
            limits,
            pool: Pool::new(limits.memory_budget, limits.idle_after),
            slots: Semaphore::new(capacity),
            capacity: AtomicUsize::new(capacity),
            instance_bytes: AtomicUsize::new(instance_bytes.unwrap_or(0)),
            retire: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            precompiled: false,
        }
    }

    pub(super) fn precompiled(mut self, precompiled: bool) -> Self {
        self.precompiled = precompiled;
        self
    }

    /// Whether it was loaded from its precompiled artifact (see
    /// [`super::aot`]) rather than compiled.
    pub fn is_precompiled(&self) -> bool {
        self.precompiled
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The version of the WIT package it targets, which its events are
    /// converted to.
    pub fn wit(&self) -> WitVersion {
        self.pre.version()
    }

    /// What config grants it, by name: setting names (never their
    /// values), KV, and the origins it may fetch from.
    pub fn granted(&self) -> Granted {
        Granted {
            settings: self.grants.settings.keys().cloned().collect(),
            kv: self.grants.kv.is_some(),
            http: (self.grants.http.iter())
                .flat_map(|http| http.origins.iter().map(ToString::to_string))
                .collect(),
        }
    }

    /// Calls waiting now because every instance is busy.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A permit for one instance, counted in [`Self::waiting`] while it
    /// is not free.
    async fn slot(&self) -> SemaphorePermit<'_> {
        if let Ok(slot) = self.slots.try_acquire() {
            return slot;
        }
        /// Uncounts on drop, so that a call timed out while waiting does too.
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Counted(&self.waiting);
        tracing::debug!(plugin = %self.name, "every instance busy: the call waits for one");
        self.slots
            .acquire()
            .await
            .expect("plugin slots never close")
    }

    /// Runs `handle` for one event under the plugin's deadline.
    pub async fn handle(&self, event: &PluginEvent) -> Result<Option<Reply>, CallError> {
        self.call(event, None).await
    }

    /// [`Self::handle`] in `trial`: its host calls recorded, its effects
    /// as the trial says.
    pub async fn try_event(
        &self,
        event: &PluginEvent,
        trial: Arc<Trial>,
    ) -> Result<Option<Reply>, CallError> {
        self.call(event, Some(trial)).await
    }

    async fn call(
        &self,
        event: &PluginEvent,
        trial: Option<Arc<Trial>>,
    ) -> Result<Option<Reply>, CallError> {
        let deadline = Instant::now() + self.limits.timeout;
        let call = CallContext {
            route: event.route().to_owned(),
            delivery_id: event.delivery_id().to_owned(),
            trial,
        };
        let run = async {
            let slot = self.slot().await;
            let mut warm = match self.take_warm() {
                Some(warm) => {
                    tracing::Span::current().record("wirehook.instance_reused", true);
                    warm
                }
                None => {
                    tracing::Span::current().record("wirehook.instance_reused", false);
                    self.instantiate(deadline).await?
                }
            };
            let data = warm.store.data_mut();
            data.call = call;
            data.deadline = deadline;
            // Counted from this call: a warm instance's deadline is where
            // its last call left it, long passed, and the call would yield
            // at its first check.
            warm.store.set_epoch_deadline(1);
            let outcome = warm
                .instance
                .call_handle(&mut warm.store, &event.0)
                .await
                .map_err(|e| self.trap_error(&warm.store, e));
            Ok::<_, CallError>((warm, outcome, slot))
        };
        let (mut warm, outcome, slot) =
            match tokio::time::timeout(self.limits.timeout + TIMEOUT_GRACE, run).await {
                Ok(result) => result?,
                Err(_) => return Err(CallError::Timeout(self.limits.timeout)),
            };
        let reply = match outcome? {
            Ok(reply) => reply.map(|r| Reply {
                status: r.status,
                json: r.json,
            }),
            Err(types::Failure::Retry(reason)) => return Err(CallError::Retry(reason)),
            Err(types::Failure::Drop(reason)) => return Err(CallError::Drop(reason)),
        };
        warm.events += 1;
        // The trial is the caller's: a warm instance must not keep it.
        warm.store.data_mut().call.trial = None;
        self.give_back(warm, slot);
        Ok(reply)
    }

    async fn instantiate(&self, deadline: Instant) -> Result<Warm, CallError> {
        let state = State::new(
            self.grants.clone(),
            MemoryCap::new(self.limits.memory_bytes),
        );
        let mut store = Store::new(&self.engine, state);
        store.data_mut().deadline = deadline;
        limits::bound(&mut store);
        let instance = self.pre.instantiate(&mut store).await.map_err(|e| {
            match self.trap_error(&store, e) {
                CallError::Trap(reason) => CallError::Instantiate(reason),
                other => other,
            }
        })?;
        Ok(Warm {
            store,
            instance,
            events: 0,
        })
    }

    fn take_warm(&self) -> Option<Warm> {
        match self.isolation {
            Isolation::Pooled => self.pool.take(),
            Isolation::Event => None,
        }
    }

    fn give_back(&self, warm: Warm, slot: SemaphorePermit<'_>) {
        let limiter = &warm.store.data().limiter;
        let bytes = limiter.peak();
        self.fit_capacity(bytes, slot);
        // Memory never shrinks: an instance that grew near the cap would
        // carry that into every later event.
        let too_big = bytes > limiter.cap() / 4 * 3;
        let worn_out = warm.events >= self.limits.max_events_per_instance;
        if self.isolation == Isolation::Event || too_big || worn_out {
            return;
        }
        // One the budget has no room for is dropped here, after the
        // pool's lock is released.
        drop(self.pool.put(warm, bytes));
    }

    /// Shrinks the capacity when an instance grew past the size it was
    /// computed from, so that the instances a call may find idle stay
    /// within the budget (else the pool would drop one that the next call
    /// must instantiate again); the permits over it are forgotten as the
    /// calls holding them give them back, `slot` among them.
    fn fit_capacity(&self, bytes: usize, slot: SemaphorePermit<'_>) {
        if bytes > self.instance_bytes.fetch_max(bytes, Ordering::Relaxed) {
            let fits = pool::capacity(
                self.limits.pool_size,
                self.limits.memory_budget,
                Some(bytes),
            );
            let before = self.capacity.fetch_min(fits, Ordering::Relaxed);
            if fits < before {
                tracing::debug!(plugin = %self.name, instance_bytes = bytes, capacity = fits, "an instance grew: fewer fit the memory budget");
                self.retire.fetch_add(before - fits, Ordering::Relaxed);
            }
        }
        let retired = self
            .retire
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if retired {
            slot.forget();
        }
    }

    fn trap_error(&self, store: &Store<State>, error: wasmtime::Error) -> CallError {
        let stderr = store.data().stderr_text();
        if !stderr.is_empty() {
            tracing::warn!(plugin = %self.name(), stderr = %stderr, "plugin wrote to stderr before failing");
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            CallError::Timeout(self.limits.timeout)
        } else {
            CallError::Trap(format!("{error:#}"))
        }
    }
}
