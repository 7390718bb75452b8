//! Configuration: one TOML file, overridable by `WIREHOOK_` environment
//! variables (`WIREHOOK_SERVER__LISTEN=0.0.0.0:8080`), read with figment.
//!
//! Parsing checks shapes and types; [`Config::resolve`] checks what types
//! cannot (unique names, known providers, secrets that resolve), reads
//! every secret and parses every origin and header name once, and reports
//! every problem with its key, so `wirehook check` and a reload say
//! everything wrong at once. What runs is built from the [`Resolved`]
//! config alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use figment::value::Dict;
use ipnet::IpNet;
use serde::Deserialize;

use crate::secret::SecretSource;

mod admin;
mod problem;
pub mod provider;
mod resolve;
mod server;
mod storage;
mod telemetry;

pub use admin::{AdminConfig, ResolvedAdmin};
use problem::figment_problem;
pub use problem::{ConfigError, Problem};
pub use resolve::{Resolved, ResolvedPlugin, ResolvedRoute};
pub use server::{ServerConfig, TlsConfig};
pub use storage::{Backend, StorageConfig};
pub use telemetry::TelemetryConfig;

/// Paths the main listener answers itself; no route may take them.
pub const RESERVED_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// `[[route]]` tables, in file order.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[plugin.NAME]` tables: grants and settings per plugin.
    #[serde(default, rename = "plugin")]
    pub plugin: BTreeMap<String, PluginConfig>,
}

/// `[reload]`: when the config and plugins are re-read while serving.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Watch the config file and the plugins dir (SIGHUP always works).
    pub watch: bool,
    /// Quiet time after the last change before reloading, so an editor's
    /// save or a copy in progress is taken once, whole.
    pub debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            debounce_ms: 300,
        }
    }
}

/// `[log]`: read once at start. `--log-format`, `WIREHOOK_LOG_FORMAT`
/// and `RUST_LOG` win over these.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter, e.g. `info,wirehook=debug`.
    pub level: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[delivery]`: how `queue` routes hand events to plugins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Events handed to plugins at once.
    pub workers: usize,
    /// Above this many undelivered events, new ones get 503 + Retry-After.
    pub max_queue_depth: u64,
    /// A delivery id seen on a route within this window is not handed to
    /// plugins again.
    pub dedup_window_secs: u64,
    /// Delivered events (and logged respond events) are deleted after this.
    pub retention_hours: u64,
    /// On SIGTERM, how long plugin calls in flight may take to finish.
    pub shutdown_grace_secs: u64,
    /// How often finished events past `retention_hours` are deleted and
    /// the queue depth is counted again from the store.
    pub housekeeping_secs: u64,
    /// PostgreSQL: how long a claimed event stays its holder's without a
    /// renewal; then any instance may claim it again.
    pub lease_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_queue_depth: 100_000,
            dedup_window_secs: 24 * 3600,
            retention_hours: 7 * 24,
            shutdown_grace_secs: 10,
            housekeeping_secs: 60,
            lease_secs: 30,
        }
    }
}

/// `[plugins]`: limits every plugin instance runs under.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Every `*.wasm` here is a plugin named after its file stem.
    pub dir: PathBuf,
    /// Compiled plugins, kept between runs so a restart does not compile
    /// again; `<storage.path>/cache` when unset.
    pub cache_dir: Option<PathBuf>,
    /// Linear memory cap per instance.
    pub memory_mb: u64,
    /// Wall-clock deadline per event and plugin.
    pub timeout_ms: u64,
    /// Most instances of a plugin at once; kept warm between events.
    pub pool_size: usize,
    /// Linear memory a plugin's instances may hold, at once and idle:
    /// fewer than `pool_size` of a large one (an interpreter's).
    pub memory_budget_mb: u64,
    /// A warm instance unused this long is dropped, giving its memory back.
    pub instance_idle_secs: u64,
    /// A warm instance is replaced after this many events.
    pub max_events_per_instance: u64,
    /// KV limits per plugin (for plugins granted `kv`).
    pub kv_max_key_bytes: usize,
    pub kv_max_value_bytes: usize,
    pub kv_max_total_bytes: u64,
    /// `fetch`: per-request timeout (the plugin's deadline still applies).
    pub fetch_timeout_ms: u64,
    /// `fetch`: responses larger than this are an error.
    pub fetch_max_response_bytes: usize,
    /// `log`: lines per second per plugin; a burst of twice that is allowed.
    pub log_lines_per_sec: u32,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("plugins/dist"),
            cache_dir: None,
            memory_mb: 64,
            timeout_ms: 1000,
            pool_size: 16,
            memory_budget_mb: 64,
            instance_idle_secs: 60,
            max_events_per_instance: 10_000,
            kv_max_key_bytes: 256,
            kv_max_value_bytes: 64 * 1024,
            kv_max_total_bytes: 10 * 1024 * 1024,
            fetch_timeout_ms: 5_000,
            fetch_max_response_bytes: 1024 * 1024,
            log_lines_per_sec: 50,
        }
    }
}

impl PluginsConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn wasm_path(&self, plugin: &str) -> PathBuf {
        self.dir.join(format!("{plugin}.wasm"))
    }
}

/// What the HTTP response of a route is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 2xx once the event is accepted; plugins run afterwards.
    #[default]
    Queue,
    /// The plugins run inline and the last reply is the response.
    Respond,
}

/// `[[route]]`: the keys every route has, and its provider's own keys
/// (see [`provider`]), read by [`Config::resolve`].
#[derive(Debug, Clone, Deserialize)]
pub struct RouteConfig {
    pub name: String,
    pub path: String,
    pub provider: String,
    pub secret: Option<SecretSource>,
    #[serde(default)]
    pub plugins: Vec<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub allow_ips: Vec<IpNet>,
    /// Queue routes: attempts before an event becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Queue routes: delay before the first retry; doubles each attempt
    /// (with jitter) up to `backoff_max_ms`.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Every other key: the provider's options (`header`, `headers`,
    /// `verify_token`, `algorithm`, ...), each read by the provider that
    /// reads it, and any other key refused with its path.
    #[serde(flatten)]
    pub keys: Dict,
}

fn default_max_attempts() -> u32 {
    8
}

fn default_backoff_ms() -> u64 {
    1000
}

fn default_backoff_max_ms() -> u64 {
    3600 * 1000
}

/// How a plugin's instances are reused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Warm instances are reused across events (fast).
    #[default]
    Pooled,
    /// Every event gets a fresh instance (nothing survives an event).
    Event,
}

/// `[plugin.NAME]`: what one plugin is granted. Nothing is granted by
/// default but `log`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    /// Origins the plugin may fetch from: `scheme://host[:port]`, the host
    /// exact or `*.domain`; an IP-literal host grants that one address.
    pub allow_http: Vec<String>,
    /// Values the plugin reads with `setting`; `env:`/`file:` like secrets.
    pub settings: BTreeMap<String, SecretSource>,
    /// Durable key-value state in wirehook's store.
    pub kv: bool,
    pub isolation: Isolation,
    /// This plugin's `plugins.pool_size`: an interpreter's instances are
    /// tens of megabytes each, and a plugin that mostly waits on `fetch`
    /// may want more than the rest.
    pub pool_size: Option<usize>,
    /// This plugin's `plugins.memory_budget_mb`.
    pub memory_budget_mb: Option<u64>,
}

impl Config {
    /// Reads `path` and the `WIREHOOK_` environment. Only shape errors are
    /// reported here; see [`Config::resolve`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError {
                file: path.to_owned(),
                problems: vec![Problem::new("(file)", "no such file")],
            });
        }
        figment(path).extract().map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: e.into_iter().map(figment_problem).collect(),
        })
    }

    /// The configuration written in `text`, without the environment: what
    /// [`Config::load`] reads from a file, with its shape errors.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| e.into_iter().map(figment_problem).collect())
    }

    /// The `[telemetry]` table of `path`, or the defaults (nothing
    /// exported) if it cannot be read: like `[log]`, it is read before
    /// the rest, and a broken file is reported when the rest is loaded.
    pub fn telemetry_settings(path: &Path) -> TelemetryConfig {
        figment(path).extract_inner("telemetry").unwrap_or_default()
    }

    /// The `[log]` table of `path`, or the defaults if the file cannot be
    /// read: logging starts before the config is loaded, and a broken
    /// file is then reported through the default logger.
    pub fn log_settings(path: &Path) -> LogConfig {
        figment(path).extract_inner("log").unwrap_or_default()
    }
}

/// The file, then the `WIREHOOK_` environment over it.
fn figment(path: &Path) -> Figment {
    Figment::new().merge(Toml::file_exact(path)).merge(
        Env::prefixed("WIREHOOK_")
            .split("__")
            // Read by the CLI itself, not configuration keys.
            .ignore(&["config", "log_format"]),
    )
}
