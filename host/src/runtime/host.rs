//! What a plugin instance's store holds, and the `host` interface it
//! imports. Capabilities not granted in `[plugin.NAME]` answer with an
//! error naming the plugin and the capability.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::limits::MemoryCap;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, types};

/// What config grants one plugin.
#[derive(Debug, Default)]
pub struct Grants {
    pub plugin: String,
    pub settings: BTreeMap<String, String>,
}

/// The event an instance is handling, for log lines.
#[derive(Debug, Default, Clone)]
pub struct CallContext {
    pub route: String,
    pub delivery_id: String,
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

/// Bytes of guest stderr kept per instance.
const STDERR_CAPACITY: usize = 16 * 1024;

impl State {
    pub(super) fn new(grants: Arc<Grants>, limiter: MemoryCap) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // No preopened directories, no environment, no arguments, no
        // sockets, no name lookup: the guest sees an empty world. Stdout is
        // discarded; stderr is kept for diagnosis.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
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

    fn not_granted(&self, capability: &str) -> String {
        format!(
            "plugin `{}` has no `{capability}` capability: grant it in [plugin.{}]",
            self.grants.plugin, self.grants.plugin
        )
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
        let plugin = self.grants.plugin.as_str();
        let route = self.call.route.as_str();
        let delivery_id = self.call.delivery_id.as_str();
        match level {
            host::Level::Trace => tracing::trace!(plugin, route, delivery_id, "{msg}"),
            host::Level::Debug => tracing::debug!(plugin, route, delivery_id, "{msg}"),
            host::Level::Info => tracing::info!(plugin, route, delivery_id, "{msg}"),
            host::Level::Warn => tracing::warn!(plugin, route, delivery_id, "{msg}"),
            host::Level::Error => tracing::error!(plugin, route, delivery_id, "{msg}"),
        }
    }

    async fn setting(&mut self, key: String) -> Option<String> {
        self.grants.settings.get(&key).cloned()
    }

    async fn kv_get(&mut self, _key: String) -> Result<Option<Vec<u8>>, String> {
        Err(self.not_granted("kv"))
    }

    async fn kv_set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), String> {
        Err(self.not_granted("kv"))
    }

    async fn kv_delete(&mut self, _key: String) -> Result<(), String> {
        Err(self.not_granted("kv"))
    }

    async fn kv_list(&mut self, _prefix: String) -> Result<Vec<String>, String> {
        Err(self.not_granted("kv"))
    }

    async fn fetch(
        &mut self,
        _req: host::OutgoingRequest,
    ) -> Result<host::IncomingResponse, String> {
        Err(self.not_granted("fetch"))
    }
}
