//! Hands decoded events to a route's plugins: inline for `respond` routes,
//! through the durable store and a pool of workers for `queue` routes.
//!
//! Queue delivery is at-least-once: an event is acknowledged only once it
//! is committed, workers claim it from the store, and it leaves the queue
//! only when every plugin of its route has handled it, when a plugin drops
//! it, or after its route's last attempt (a dead letter).
//!
//! While nothing waits in the store, an accepted event is claimed in the
//! same write that stores it and handed to a worker in memory: no claim
//! round trip through the store, and the worker wakes at once. Either
//! way it is `running` in the store until its outcome is recorded, so a
//! restart re-queues it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::config::DeliveryConfig;
use crate::event::Event;
use crate::metrics::{Metrics, TraceLabels};
use crate::routes::{Route, RouteTable};
use crate::runtime::{CallError, PluginEvent, Reply};
use crate::store::{
    Admission, Claimed, Finished, Intake, Outcome, Response, Store, StoreError, UnixMs,
};
use crate::telemetry::{self, TARGET};

/// How long an idle worker waits before looking at the store again, so
/// that events re-queued by `wirehook replay` from another process are
/// picked up.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Most events a worker claims at once. A deep queue is claimed in
/// batches and their outcomes recorded together, a store write each
/// rather than one per event; a shallow one is shared out one by one so
/// that every worker has something to do.
const MAX_CLAIM: u64 = 16;

/// Events a worker may hold claimed at intake, waiting or being
/// attempted; beyond it, accepted events wait in the store.
const HANDOFF_PER_WORKER: u64 = 4 * MAX_CLAIM;

/// A plugin that failed an event, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`: {error}")]
pub struct PluginFailure {
    pub plugin: String,
    pub error: CallError,
}

/// Why events could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("queue is full ({depth} events waiting)")]
    Overloaded { depth: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Whether an attempt that ended so ran the plugins (one waiting for its
/// route did not).
fn outcome_ran(outcome: &Outcome) -> bool {
    !matches!(outcome, Outcome::Wait)
}

/// Runs every plugin of `route` on `event`, in order, stopping at the
/// first failure. The answer is the last reply any plugin gave.
pub async fn run(
    route: &Route,
    event: &PluginEvent,
    metrics: &Metrics,
) -> Result<Option<Reply>, PluginFailure> {
    let mut answer = None;
    for plugin in &route.plugins {
        let span = tracing::info_span!(
            target: TARGET,
            "plugin",
            otel.status_code = Empty,
            wirehook.plugin = %plugin.name(),
            wirehook.outcome = Empty,
            wirehook.duration_us = Empty,
            wirehook.instance_reused = Empty,
        );
        let started = Instant::now();
        let outcome = plugin.handle(event).instrument(span.clone()).await;
        let took = started.elapsed();
        if !span.is_disabled() {
            span.record("wirehook.duration_us", took.as_micros() as u64);
            match &outcome {
                Ok(_) => span.record("wirehook.outcome", "handled"),
                // The kind alone: a plugin's reason may quote the event.
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("wirehook.outcome", error.kind())
                }
            };
        }
        let exemplar = (!span.is_disabled())
            .then(|| telemetry::ids(&span))
            .flatten()
            .map(|(trace_id, span_id)| TraceLabels { trace_id, span_id });
        metrics.plugin_call(plugin.name(), outcome.as_ref().map(|_| ()), took, exemplar);
        let micros = took.as_micros() as u64;
        let (route, delivery_id, attempt) = (&route.name, event.delivery_id(), event.attempt());
        match outcome {
            Ok(reply) => {
                tracing::debug!(%route, %delivery_id, attempt, plugin = %plugin.name(), micros, "plugin handled event");
                if reply.is_some() {
                    answer = reply;
                }
            }
            Err(error) => {
                tracing::warn!(%route, %delivery_id, attempt, plugin = %plugin.name(), micros, %error, "plugin failed event");
                return Err(PluginFailure {
                    plugin: plugin.name().to_string(),
                    error,
                });
            }
        }
    }
    Ok(answer)
}

/// The queue's front door and its workers.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    routes: Arc<ArcSwap<RouteTable>>,
    config: DeliveryConfig,
    metrics: Arc<Metrics>,
    /// Undelivered events (the metrics' gauge), kept in memory so
    /// admission costs no query; re-counted from the store at each
    /// housekeeping.
    depth: prometheus_client::metrics::gauge::Gauge,
    /// Events claimed as they were accepted, for the next free worker.
    handed: Mutex<VecDeque<Claimed>>,
    /// Events claimed as they were accepted and not yet finished: in
    /// `handed` or being attempted. At most [`HANDOFF_PER_WORKER`] a worker.
    in_hand: AtomicU64,
    /// Events workers claimed from the store and have not yet finished.
    from_store: AtomicU64,
    wake: Notify,
    stop: watch::Sender<bool>,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

impl Dispatcher {
    /// Re-queues what a previous process left running, then starts the
    /// workers and housekeeping.
    pub async fn start(
        store: Arc<dyn Store>,
        routes: Arc<ArcSwap<RouteTable>>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        let recovered = store.recover(UnixMs::now()).await?;
        if recovered > 0 {
            tracing::warn!(
                events = recovered,
                "re-queued events whose delivery was interrupted"
            );
        }
        let depth = metrics.queue_depth.clone();
        depth.set(gauge_value(store.depth().await?));
        let (stop, _) = watch::channel(false);
        let dispatcher = Arc::new(Self {
            store,
            routes,
            metrics,
            depth,
            handed: Mutex::default(),
            in_hand: AtomicU64::new(0),
            from_store: AtomicU64::new(0),
            wake: Notify::new(),
            stop,
            workers: tokio::sync::Mutex::new(JoinSet::new()),
            config,
        });
        {
            let mut workers = dispatcher.workers.lock().await;
            for _ in 0..dispatcher.config.workers {
                workers.spawn(dispatcher.clone().work());
            }
            workers.spawn(dispatcher.clone().housekeep());
        }
        Ok(dispatcher)
    }

    /// Below zero only for the moment a worker finishes an event before
    /// the request that queued it has counted it.
    pub fn depth(&self) -> u64 {
        u64::try_from(self.depth.get()).unwrap_or(0)
    }

    /// Whether the store answers a query.
    pub async fn check_store(&self) -> Result<(), StoreError> {
        self.store.depth().await.map(|_| ())
    }

    /// Durably queues `events` for their route's plugins. Returns once
    /// they are committed, so the caller may acknowledge.
    pub async fn accept(&self, events: Vec<Event>) -> Result<Vec<Admission>, AcceptError> {
        let depth = self.depth();
        if depth >= self.config.max_queue_depth {
            return Err(AcceptError::Overloaded { depth });
        }
        let now = UnixMs::now();
        let window = self.config.dedup_window_secs.saturating_mul(1000);
        let intake = self.intake(events.len() as u64);
        let to_hand = (intake == Intake::Claim).then(|| events.clone());
        // The admission's context, kept with the events: their attempts,
        // however much later, join the request's trace.
        let trace = telemetry::current_traceparent();
        let admissions = self
            .store
            .enqueue_traced(intake, events, trace.clone(), now, now.minus_ms(window))
            .instrument(tracing::info_span!(target: TARGET, "commit"))
            .await
            .inspect_err(|_| self.release(to_hand.as_ref().map_or(0, Vec::len)))?;
        let queued = admissions
            .iter()
            .filter(|a| matches!(a, Admission::Queued(_)))
            .count();
        // Counted before a worker can see them: `depth` never misses one.
        self.depth.inc_by(gauge_value(queued as u64));
        if let Some(events) = to_hand {
            let mut duplicates = 0;
            let mut handed = self.handed.lock().expect("handoff poisoned");
            for (mut event, admission) in events.into_iter().zip(&admissions) {
                match *admission {
                    Admission::Queued(id) => {
                        event.source.attempt = 1;
                        handed.push_back(Claimed {
                            id,
                            attempt: 1,
                            event,
                            trace: trace.clone(),
                        });
                    }
                    Admission::Duplicate => duplicates += 1,
                }
            }
            drop(handed);
            self.release(duplicates);
        }
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(admissions)
    }

    /// Claims `count` events at intake if nothing waits in the store (an
    /// event must not overtake one queued before it) and the workers'
    /// hands have room for them.
    fn intake(&self, count: u64) -> Intake {
        let limit = self.config.workers as u64 * HANDOFF_PER_WORKER;
        let mut in_hand = self.in_hand.load(Ordering::Acquire);
        loop {
            if self.queued_in_store() > 0 || in_hand + count > limit {
                return Intake::Queue;
            }
            match self.in_hand.compare_exchange_weak(
                in_hand,
                in_hand + count,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Intake::Claim,
                Err(current) => in_hand = current,
            }
        }
    }

    /// Frees the room `count` events claimed at intake took and no
    /// worker will hold (duplicates, or a failed write).
    fn release(&self, count: usize) {
        self.in_hand.fetch_sub(count as u64, Ordering::AcqRel);
    }

    /// Events queued in the store, due now or later: undelivered events
    /// no worker holds.
    fn queued_in_store(&self) -> u64 {
        let held = self.in_hand.load(Ordering::Acquire) + self.from_store.load(Ordering::Acquire);
        self.depth().saturating_sub(held)
    }

    /// Up to `share` of the events claimed at intake, and whether more
    /// are left.
    fn take_handed(&self, share: usize) -> (Vec<Claimed>, bool) {
        let mut handed = self.handed.lock().expect("handoff poisoned");
        let take = share.min(handed.len());
        let taken = handed.drain(..take).collect();
        (taken, !handed.is_empty())
    }

    /// Runs a `respond` route's plugins inline and logs the outcome in the
    /// delivery log without making the caller wait for the write.
    pub async fn respond(
        &self,
        route: &Route,
        event: Event,
    ) -> Result<Option<Reply>, PluginFailure> {
        let started = Instant::now();
        let event = PluginEvent::from(event);
        let result = run(route, &event, &self.metrics).await;
        let response = Response {
            reply: result
                .as_ref()
                .ok()
                .and_then(|r| r.as_ref())
                .map(|r| r.json.clone()),
            error: result.as_ref().err().map(ToString::to_string),
            duration_us: started.elapsed().as_micros() as u64,
            event: event.into(),
        };
        if let Err(e) = self.store.log_response(response, UnixMs::now()).await {
            tracing::warn!(route = %route.name, "cannot log a response: {e}");
        }
        result
    }

    /// Stops claiming events, lets calls in flight finish within the
    /// grace period, and returns. Unfinished events stay in the store and
    /// are re-queued at the next start.
    pub async fn shutdown(&self) {
        // `send_replace`: `send` stores nothing while no worker has
        // subscribed yet, and a worker starting later would never stop.
        self.stop.send_replace(true);
        let grace = Duration::from_secs(self.config.shutdown_grace_secs);
        let mut workers = self.workers.lock().await;
        let drained = tokio::time::timeout(grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "plugin calls still running at the end of the grace period; their events stay queued"
            );
            workers.abort_all();
        }
    }

    async fn work(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        // At start, and after an idle poll: the store may hold events
        // `depth` does not count (re-queued by another process).
        let mut look_in_store = true;
        while !*stop.borrow() {
            let share = (self.depth() / self.config.workers as u64).clamp(1, MAX_CLAIM) as usize;
            let (handed, more_handed) = self.take_handed(share);
            let (claimed, held, more) = if !handed.is_empty() {
                (handed, &self.in_hand, more_handed)
            } else if look_in_store || self.queued_in_store() > 0 {
                let claimed = self.claim(share).await;
                self.from_store
                    .fetch_add(claimed.len() as u64, Ordering::AcqRel);
                let full = claimed.len() == share;
                (claimed, &self.from_store, full)
            } else {
                (Vec::new(), &self.from_store, false)
            };
            if claimed.is_empty() {
                let idle = if self.queued_in_store() > 0 {
                    self.idle_time().await
                } else {
                    IDLE_POLL
                };
                look_in_store = tokio::select! {
                    _ = self.wake.notified() => false,
                    _ = self.store.queued_elsewhere() => true,
                    _ = tokio::time::sleep(idle) => true,
                    _ = stop.changed() => false,
                };
                continue;
            }
            // More than this worker's share: wake another to help.
            if more {
                self.wake.notify_one();
            }
            let count = claimed.len() as u64;
            let mut attempts = Vec::with_capacity(claimed.len());
            for claimed in claimed {
                // Events not attempted stay claimed and are re-queued at
                // the next start.
                if *stop.borrow() {
                    break;
                }
                let outcome = self.attempt(&claimed).await;
                attempts.push((claimed, outcome));
            }
            self.record(attempts).await;
            held.fetch_sub(count, Ordering::AcqRel);
        }
    }

    /// The names of the routes configured now: only their events are
    /// claimed; the others wait in the queue for a route of their name.
    fn route_names(&self) -> Vec<String> {
        self.routes
            .load()
            .routes()
            .map(|route| route.name.to_string())
            .collect()
    }

    async fn claim(&self, share: usize) -> Vec<Claimed> {
        let routes = Some(self.route_names());
        self.store
            .claim(UnixMs::now(), share, routes)
            .await
            .unwrap_or_else(|e| {
                tracing::error!("cannot claim events: {e}");
                Vec::new()
            })
    }

    /// Until the next retry falls due, at most [`IDLE_POLL`].
    async fn idle_time(&self) -> Duration {
        match self.store.next_due(Some(self.route_names())).await {
            Ok(Some(due)) => UnixMs::now().until(due).min(IDLE_POLL),
            _ => IDLE_POLL,
        }
    }

    /// Hands a claimed event to its route's plugins.
    async fn attempt(&self, claimed: &Claimed) -> Finished {
        let Claimed {
            attempt,
            event,
            trace,
            ..
        } = claimed;
        let span = tracing::info_span!(
            target: TARGET,
            "attempt",
            otel.status_code = Empty,
            wirehook.route = %event.source.route,
            wirehook.attempt = attempt,
            wirehook.outcome = Empty,
        );
        if let Some(trace) = trace {
            telemetry::set_parent(&span, trace, None);
        }
        let started = UnixMs::now();
        let took = Instant::now();
        let (outcome, plugin) = self
            .attempt_in(*attempt, event)
            .instrument(span.clone())
            .await;
        let took = took.elapsed();
        if !span.is_disabled() {
            let name = match &outcome {
                Outcome::Delivered => "delivered",
                Outcome::Retry { .. } => "retry",
                Outcome::Dead { .. } => "dead",
                Outcome::Wait => "wait",
            };
            span.record("wirehook.outcome", name);
            if matches!(outcome, Outcome::Retry { .. } | Outcome::Dead { .. }) {
                span.record("otel.status_code", "ERROR");
            }
        }
        Finished {
            id: claimed.id,
            started: Some(started),
            plugin,
            // Waiting for a route ran no plugin.
            duration_us: outcome_ran(&outcome).then_some(took.as_micros() as u64),
            outcome,
        }
    }

    /// [`Self::attempt`] inside its span: how it ended, and which plugin
    /// failed it.
    async fn attempt_in(&self, attempt: u32, event: &Event) -> (Outcome, Option<String>) {
        let routes = self.routes.load_full();
        let Some(route) = routes.route_named(&event.source.route) else {
            return (Outcome::Wait, None);
        };
        match run(route, &PluginEvent::from(event.clone()), &self.metrics).await {
            Ok(_) => (Outcome::Delivered, None),
            Err(failure) if failure.error.is_retryable() && attempt < route.retry.max_attempts => {
                let delay = route.retry.delay_ms(attempt, fastrand::f64());
                let outcome = Outcome::Retry {
                    error: failure.to_string(),
                    at: UnixMs::now().plus_ms(delay),
                };
                (outcome, Some(failure.plugin))
            }
            Err(failure) => {
                let outcome = Outcome::Dead {
                    error: failure.to_string(),
                };
                (outcome, Some(failure.plugin))
            }
        }
    }

    /// Stores how the attempts ended, in one write, then counts them.
    async fn record(&self, attempts: Vec<(Claimed, Finished)>) {
        let outcomes = attempts
            .iter()
            .map(|(_, finished)| finished.clone())
            .collect();
        if let Err(e) = self.store.finish_attempts(outcomes, UnixMs::now()).await {
            // The events stay `running` and are re-queued at next start.
            let ids: Vec<_> = attempts.iter().map(|(claimed, _)| claimed.id).collect();
            tracing::error!(?ids, "cannot record delivery outcomes: {e}");
            return;
        }
        for (Claimed { attempt, event, .. }, Finished { outcome, .. }) in attempts {
            match outcome {
                Outcome::Retry { .. } => self.metrics.retry(&event.source.route),
                // Events re-queued by `wirehook replay` from another
                // process are not counted until housekeeping: the gauge
                // may dip below zero until then, and `depth` reads 0.
                Outcome::Delivered => {
                    self.depth.dec();
                }
                Outcome::Wait => {
                    tracing::warn!(route = %event.source.route, delivery_id = %event.source.delivery_id, "queued event waits for its route, which is not configured");
                }
                Outcome::Dead { error } => {
                    self.depth.dec();
                    self.metrics.dead_letter(&event.source.route);
                    tracing::warn!(route = %event.source.route, delivery_id = %event.source.delivery_id, attempt, %error, "dead letter");
                }
            }
        }
    }

    /// Counts and logs the queued events whose route is not configured.
    async fn count_waiting(&self) {
        match self.store.waiting(self.route_names()).await {
            Ok(waiting) => {
                for (route, events) in &waiting {
                    tracing::warn!(%route, events, "queued events wait for route `{route}`, which is not configured: add it back, or replay or purge them");
                }
                self.metrics.waiting_for_route(&waiting);
            }
            Err(e) => tracing::error!("cannot count events waiting for a route: {e}"),
        }
    }

    async fn housekeep(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        // Events left waiting for a route are worth saying at start.
        self.count_waiting().await;
        // Not at once: a recount racing the first requests would lose them.
        let every = Duration::from_secs(self.config.housekeeping_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let now = UnixMs::now();
            let retention = self.config.retention_hours.saturating_mul(3600 * 1000);
            let window = self.config.dedup_window_secs.saturating_mul(1000);
            match self
                .store
                .prune(now.minus_ms(retention), now.minus_ms(window))
                .await
            {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(events = pruned, "pruned finished events"),
                Err(e) => tracing::error!("retention failed: {e}"),
            }
            self.count_waiting().await;
            match self.store.depth().await {
                Ok(depth) => {
                    self.depth.set(gauge_value(depth));
                }
                Err(e) => tracing::error!("cannot count the queue: {e}"),
            }
            tracing::debug!(depth = self.depth.get(), "housekeeping done");
        }
    }
}
