//! The plugin runtime: one wasmtime [`Engine`] for the process, a compiled
//! (or, see [`aot`], precompiled) and pre-instantiated [`Plugin`] per
//! `.wasm`, and the limits every
//! instance runs under (memory cap, wall-clock deadline, no filesystem,
//! sockets or environment).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::{PluginsConfig, ResolvedPlugin};
use crate::store::KvStore;
use fetch::Fetcher;
use host::{HttpGrant, KvGrant, LogBudget};
use limits::MAX_TABLE_ELEMENTS;

pub mod aot;
mod bindings;
mod fetch;
mod host;
mod limits;
mod plugin;
mod pool;
pub mod provider;
pub mod trial;
mod ungranted;
pub mod version;

pub use host::Grants;
pub use limits::Limits;
pub use plugin::{CallError, Granted, Plugin, PluginEvent, Reply};
pub use trial::{Effects, HostCall, MemoryKv, Trial};

use bindings::PluginPre;
use host::State;

/// How often the epoch advances; a deadline overshoots by at most this.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Bytes at the start of each pooled linear memory (and table) that are
/// zeroed in place when an instance is dropped, rather than given back to
/// the kernel and faulted in again by the next instance. A small Rust
/// plugin's whole memory fits; a large one keeps its hottest part.
const KEEP_RESIDENT: usize = 2 << 20;

/// Tables one core module may define (the component adapters declare
/// more than one).
const MAX_TABLES_PER_MODULE: u32 = 4;

/// Why a `.wasm` could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid component: {reason}")]
    Compile { path: String, reason: String },
    #[error("{path}: {unsupported}")]
    UnsupportedVersion {
        path: String,
        unsupported: version::Unsupported,
    },
    #[error("{path} does not implement the wirehook:plugin world it names: {reason}")]
    World { path: String, reason: String },
}

/// The engine and linker shared by all plugins, and what capabilities
/// are built from.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    kv: Option<Arc<dyn KvStore>>,
    fetcher: Arc<Fetcher>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// `cache_dir` holds compiled code between runs, so a restart does
    /// not recompile (a Python component takes seconds). `kv` backs the
    /// KV capability; without it (as in `wirehook check`) KV calls fail.
    pub fn new(
        cache_dir: Option<&Path>,
        kv: Option<Arc<dyn KvStore>>,
        plugins: &PluginsConfig,
    ) -> anyhow::Result<Self> {
        let mut config = engine_config();
        if let Some(dir) = cache_dir {
            // Private: it lives in the store's directory by default.
            crate::store::private::create_dir(dir)
                .with_context(|| format!("creating the compilation cache {}", dir.display()))?;
            // wasmtime wants an absolute cache path; config paths are
            // relative to the working directory.
            let dir =
                std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
            let mut cache = CacheConfig::new();
            cache.with_directory(dir);
            config.cache(Some(Cache::new(cache)?));
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::add_to_linker(&mut linker)?;
        let fetcher = Fetcher::new(
            std::time::Duration::from_millis(plugins.fetch_timeout_ms),
            plugins.fetch_max_response_bytes,
        )?;
        Ok(Self {
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            linker,
            kv,
            fetcher: Arc::new(fetcher),
        })
    }

    /// Compiles (or takes from the cache) and pre-instantiates one plugin
    /// from `bytes`, the content of the `.wasm` at `path`.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
        config: &ResolvedPlugin,
        plugins: &PluginsConfig,
    ) -> Result<Plugin, LoadError> {
        let mut limits = Limits {
            pool_size: config.pool_size.unwrap_or(plugins.pool_size),
            ..Limits::from(plugins)
        };
        if let Some(budget) = config.memory_budget_mb {
            limits.memory_budget = limits::mib(budget);
        }
        let shown = path.display().to_string();
        let precompiled = aot::load(&self.engine, path, bytes);
        let from_artifact = precompiled.is_some();
        let component = match precompiled {
            Some(component) => component,
            None => Component::new(&self.engine, bytes).map_err(|e| LoadError::Compile {
                path: shown.clone(),
                reason: format!("{e:#}"),
            })?,
        };
        let wit = version::check(&component, &self.engine).map_err(|unsupported| {
            LoadError::UnsupportedVersion {
                path: shown.clone(),
                unsupported,
            }
        })?;
        let pre = self
            .linker_for(&component)
            .and_then(|linker| PluginPre::new(wit, &linker, &component))
            .map_err(|e| LoadError::World {
                path: shown,
                reason: format!("{e:#}"),
            })?;
        let grants = self.grants(name, config, plugins);
        Ok(Plugin::new(
            self.engine.clone(),
            pre,
            Arc::new(grants),
            config.isolation,
            limits,
            initial_memory(&component),
        )
        .precompiled(from_artifact))
    }
}

/// The linear memory an instance of `component` starts with, when it
/// declares it: every memory at the largest initial size of any (an upper
/// bound; a component has one memory that matters).
fn initial_memory(component: &Component) -> Option<usize> {
    /// A wasm page.
    const PAGE: u64 = 64 * 1024;
    let required = component.resources_required()?;
    let pages = required.max_initial_memory_size?;
    let bytes = pages
        .saturating_mul(PAGE)
        .saturating_mul(u64::from(required.num_memories));
    Some(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// The engine's settings. `wirehook compile` builds its engine from them
/// too: an artifact loads only in an engine with the same settings.
fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
    config
}

/// The engine `wirehook compile` writes artifacts for: the daemon's.
pub fn compiling_engine() -> anyhow::Result<Engine> {
    Ok(Engine::new(&engine_config())?)
}

/// Instances come from a pool of memories, tables and stacks reserved
/// once, so that an instance (a fresh one per event under `isolation =
/// "event"`, or a replacement for a worn-out warm one) costs no mmap and
/// munmap and few page faults. The pool reserves address space only; the
/// memory cap per instance stays with `plugins.memory_mb` (the limiter),
/// so that a reload may change it.
fn pooling() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        // A slot keeps what `KEEP_RESIDENT` leaves resident after its
        // instance is gone; reusing the slots used before, rather than
        // cold ones, bounds that by the most instances alive at once
        // rather than by the pool's thousand slots.
        .max_unused_warm_slots(0)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_tables_per_module(MAX_TABLES_PER_MODULE);
    pool
}

impl Runtime {
    /// The engine every component runs in, provider plugins included.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The shared linker, or for a component that imports interfaces
    /// wirehook never grants, a copy that links them as refusals.
    fn linker_for(&self, component: &Component) -> wasmtime::Result<Cow<'_, Linker<State>>> {
        if !ungranted::imports_any(component, &self.engine) {
            return Ok(Cow::Borrowed(&self.linker));
        }
        let mut linker = self.linker.clone();
        ungranted::link_refusals(&mut linker, component, &self.engine)?;
        Ok(Cow::Owned(linker))
    }

    /// Builds what `[plugin.NAME]` grants.
    fn grants(&self, name: &str, config: &ResolvedPlugin, plugins: &PluginsConfig) -> Grants {
        let settings = config
            .settings
            .iter()
            .map(|(key, value)| {
                (
                    key.clone(),
                    String::from_utf8_lossy(value.expose()).into_owned(),
                )
            })
            .collect();
        let kv = match (&self.kv, config.kv) {
            (Some(store), true) => Some(KvGrant {
                store: store.clone(),
                max_key_bytes: plugins.kv_max_key_bytes,
                max_value_bytes: plugins.kv_max_value_bytes,
                max_total_bytes: plugins.kv_max_total_bytes,
            }),
            _ => None,
        };
        let http = (!config.allow_http.is_empty()).then(|| HttpGrant {
            fetcher: self.fetcher.clone(),
            origins: config.allow_http.clone(),
        });
        Grants {
            plugin: name.to_owned(),
            settings,
            kv,
            http,
            log: std::sync::Mutex::new(LogBudget::new(plugins.log_lines_per_sec)),
        }
    }
}

/// Advances the engine's epoch on a thread of its own, so deadlines hold
/// even while every async worker is busy.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("wirehook-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
