//! What a plugin instance's store holds, and the `host` interface it
//! imports. Each capability is granted per plugin in `[plugin.NAME]`; one
//! that is not granted answers with an error naming the plugin and the
//! capability, and the refusal is logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types};
use super::fetch::{self, Fetcher};
use super::limits::MemoryCap;
use super::trial::{self, HostCall, Trial};
use crate::origin::Origin;
use crate::store::KvStore;
use crate::text;

/// Bytes of a plugin's log line kept; the rest is cut, with a marker.
const MAX_LOG_LINE_BYTES: usize = 4096;

/// Keys `kv-list` returns at most.
const KV_LIST_LIMIT: usize = 1000;

/// The KV capability of one plugin.
pub struct KvGrant {
    pub store: Arc<dyn KvStore>,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_total_bytes: u64,
}

/// The fetch capability of one plugin.
pub struct HttpGrant {
    pub fetcher: Arc<Fetcher>,
    pub origins: Vec<Origin>,
}

/// What config grants one plugin.
pub struct Grants {
    pub plugin: String,
    /// Resolved values; never logged.
    pub settings: BTreeMap<String, String>,
    pub kv: Option<KvGrant>,
    pub http: Option<HttpGrant>,
    pub log: Mutex<LogBudget>,
}

/// A token bucket for log lines, shared by a plugin's instances.
pub struct LogBudget {
    per_sec: f64,
    tokens: f64,
    refilled: Instant,
    suppressed: u64,
}

impl LogBudget {
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            per_sec,
            tokens: per_sec * 2.0,
            refilled: Instant::now(),
            suppressed: 0,
        }
    }

    /// Whether a line may be written now, and how many were suppressed
    /// since the last one that was.
    fn take(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec * 2.0);
        self.refilled = now;
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The event an instance is handling, for log lines, and the trial it
/// runs in, if any.
#[derive(Default, Clone)]
pub struct CallContext {
    pub route: String,
    pub delivery_id: String,
    pub trial: Option<Arc<Trial>>,
}

/// The data of one instance's store.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryCap,
    pub(super) grants: Arc<Grants>,
    pub(super) call: CallContext,
    /// The current call must end by then; checked at each epoch tick.
    pub(super) deadline: Instant,
    /// The guest's stderr (panic messages), logged when an instance fails.
    pub(super) stderr: MemoryOutputPipe,
}

/// The WASI a guest gets, plugin or provider: no preopened directories,
/// no environment, no arguments, no sockets, no name lookup. Stdout is
/// discarded; stderr goes to `stderr`, kept for diagnosis.
pub(super) fn empty_world(stderr: &MemoryOutputPipe) -> WasiCtx {
    WasiCtx::builder()
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// Bytes of guest stderr kept per instance.
const STDERR_CAPACITY: usize = 16 * 1024;

impl crate::runtime::limits::Bounded for State {
    fn memory_cap(&mut self) -> &mut MemoryCap {
        &mut self.limiter
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl State {
    pub(super) fn new(grants: Arc<Grants>, limiter: MemoryCap) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        Self {
            wasi: empty_world(&stderr),
            table: ResourceTable::new(),
            limiter,
            grants,
            call: CallContext::default(),
            deadline: Instant::now(),
            stderr,
        }
    }

    /// What the guest wrote to stderr, lossily decoded.
    pub(super) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    fn plugin(&self) -> &str {
        &self.grants.plugin
    }

    /// Logs (records, in a trial) and returns the refusal of a capability
    /// call.
    fn refuse(&self, capability: &str, reason: String) -> String {
        let message = format!("plugin `{}`: {capability}: {reason}", self.plugin());
        if let Some(trial) = &self.call.trial {
            trial.record(HostCall::Refused {
                capability: capability.to_owned(),
                reason,
            });
            return message;
        }
        tracing::warn!(
            plugin = self.plugin(),
            route = %self.call.route,
            delivery_id = %self.call.delivery_id,
            capability,
            %reason,
            "capability refused"
        );
        message
    }

    fn not_granted(&self, capability: &str, how: &str) -> String {
        self.refuse(
            capability,
            format!("not granted; add `{how}` to [plugin.{}]", self.plugin()),
        )
    }

    fn kv(&self) -> Result<&KvGrant, String> {
        self.grants
            .kv
            .as_ref()
            .ok_or_else(|| self.not_granted("kv", "kv = true"))
    }

    /// Where KV calls go: the trial's store when it contains effects,
    /// else the granted one.
    fn kv_store<'a>(&'a self, grant: &'a KvGrant) -> &'a dyn KvStore {
        match self.call.trial.as_ref().and_then(|t| t.kv()) {
            Some(kv) => kv.as_ref(),
            None => grant.store.as_ref(),
        }
    }

    fn record(&self, call: impl FnOnce() -> HostCall) {
        if let Some(trial) = &self.call.trial {
            trial.record(call());
        }
    }

    fn check_key(&self, grant: &KvGrant, key: &str) -> Result<(), String> {
        if key.is_empty() || key.len() > grant.max_key_bytes {
            return Err(self.refuse(
                "kv",
                format!("keys must be 1 to {} bytes", grant.max_key_bytes),
            ));
        }
        Ok(())
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for State {}

impl host::Host for State {
    async fn log(&mut self, level: host::Level, msg: String) {
        let allowed = self
            .grants
            .log
            .lock()
            .expect("log budget poisoned")
            .take(Instant::now());
        let Some(suppressed) = allowed else { return };
        // Cut here, so that one call cannot write a megabyte to the
        // journal (or the trial's record).
        let msg = text::truncate(&msg, MAX_LOG_LINE_BYTES);
        if let Some(trial) = &self.call.trial {
            trial.record(HostCall::Log {
                level: level_name(level),
                message: msg.into_owned(),
            });
            return;
        }
        let plugin = self.plugin();
        let route = self.call.route.as_str();
        let delivery_id = self.call.delivery_id.as_str();
        if suppressed > 0 {
            tracing::warn!(
                plugin,
                suppressed,
                "plugin log lines suppressed (rate limit)"
            );
        }
        // The plugin call's span, when traced: its line is found from
        // the trace and the other way round.
        let ids = crate::telemetry::current_ids();
        let trace_id = ids.as_ref().map(|(trace, _)| trace.as_str());
        let span_id = ids.as_ref().map(|(_, span)| span.as_str());
        // Escaped by the log's formatter.
        match level {
            host::Level::Trace => {
                tracing::trace!(plugin, route, delivery_id, trace_id, span_id, "{msg}")
            }
            host::Level::Debug => {
                tracing::debug!(plugin, route, delivery_id, trace_id, span_id, "{msg}")
            }
            host::Level::Info => {
                tracing::info!(plugin, route, delivery_id, trace_id, span_id, "{msg}")
            }
            host::Level::Warn => {
                tracing::warn!(plugin, route, delivery_id, trace_id, span_id, "{msg}")
            }
            host::Level::Error => {
                tracing::error!(plugin, route, delivery_id, trace_id, span_id, "{msg}")
            }
        }
    }

    async fn setting(&mut self, key: String) -> Option<String> {
        self.grants.settings.get(&key).cloned()
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let grant = self.kv()?;
        self.check_key(grant, &key)?;
        let value = self
            .kv_store(grant)
            .kv_get(self.plugin(), &key)
            .await
            .map_err(|e| self.refuse("kv", e.to_string()))?;
        self.record(|| HostCall::KvGet {
            found: value.is_some(),
            key,
        });
        Ok(value)
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        let grant = self.kv()?;
        self.check_key(grant, &key)?;
        if value.len() > grant.max_value_bytes {
            return Err(self.refuse(
                "kv",
                format!("values are at most {} bytes", grant.max_value_bytes),
            ));
        }
        let bytes = value.len();
        match self
            .kv_store(grant)
            .kv_set(self.plugin(), &key, value, grant.max_total_bytes)
            .await
        {
            Ok(true) => {
                self.record(|| HostCall::KvSet { key, bytes });
                Ok(())
            }
            Ok(false) => Err(self.refuse(
                "kv",
                format!("the namespace would exceed {} bytes", grant.max_total_bytes),
            )),
            Err(e) => Err(self.refuse("kv", e.to_string())),
        }
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        let grant = self.kv()?;
        self.check_key(grant, &key)?;
        self.kv_store(grant)
            .kv_delete(self.plugin(), &key)
            .await
            .map_err(|e| self.refuse("kv", e.to_string()))?;
        self.record(|| HostCall::KvDelete { key });
        Ok(())
    }

    async fn kv_list(&mut self, prefix: String) -> Result<Vec<String>, String> {
        let grant = self.kv()?;
        let keys = self
            .kv_store(grant)
            .kv_list(self.plugin(), &prefix, KV_LIST_LIMIT)
            .await
            .map_err(|e| self.refuse("kv", e.to_string()))?;
        self.record(|| HostCall::KvList {
            prefix,
            keys: keys.len(),
        });
        Ok(keys)
    }

    async fn fetch(
        &mut self,
        req: host::OutgoingRequest,
    ) -> Result<host::IncomingResponse, String> {
        let Some(grant) = &self.grants.http else {
            return Err(self.not_granted("fetch", "allow_http = [\"https://host\"]"));
        };
        let (method, url) = (req.method.clone(), req.url.clone());
        if self.call.trial.as_ref().is_some_and(|t| t.contained()) {
            let reason = "not made: the plugin runs with no effects".to_owned();
            self.record(|| HostCall::Fetch {
                method,
                url,
                status: None,
                error: Some(reason.clone()),
                millis: 0,
            });
            return Err(format!("plugin `{}`: fetch: {reason}", self.plugin()));
        }
        let request = fetch::Request {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let started = Instant::now();
        let result = grant.fetcher.fetch(&grant.origins, request).await;
        self.record(|| HostCall::Fetch {
            method,
            url,
            status: result.as_ref().ok().map(|r| r.status),
            error: result.as_ref().err().map(ToString::to_string),
            millis: trial::millis(started.elapsed()),
        });
        match result {
            Ok(response) => Ok(host::IncomingResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
            }),
            // Recorded above, with the request it refused.
            Err(reason) if self.call.trial.is_some() => {
                Err(format!("plugin `{}`: fetch: {reason}", self.plugin()))
            }
            Err(reason) => Err(self.refuse("fetch", reason.to_string())),
        }
    }
}

fn level_name(level: host::Level) -> &'static str {
    match level {
        host::Level::Trace => "trace",
        host::Level::Debug => "debug",
        host::Level::Info => "info",
        host::Level::Warn => "warn",
        host::Level::Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The clock is the caller's: each step of the bucket is exact.
    #[test]
    fn log_budget_allows_a_burst_of_twice_the_rate_then_the_rate() {
        let mut budget = LogBudget::new(10);
        let start = budget.refilled;
        let burst = (0..500).filter(|_| budget.take(start).is_some()).count();
        assert_eq!(burst, 20);
        // Two tenths of a second refill two lines; the first reports the
        // ones suppressed since the last line that was written.
        let later = start + Duration::from_millis(200);
        assert_eq!(budget.take(later), Some(480));
        assert_eq!(budget.take(later), Some(0));
        assert_eq!(budget.take(later), None);
        // However long the plugin was quiet, the burst stays twice the rate.
        let much_later = later + Duration::from_secs(3600);
        let burst = (0..500)
            .filter(|_| budget.take(much_later).is_some())
            .count();
        assert_eq!(burst, 20);
    }
}
