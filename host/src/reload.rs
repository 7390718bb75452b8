//! Reload: a change to the config file (or to a symlink on its path, as
//! a Kubernetes ConfigMap swaps its `..data`) or to a `.wasm` in the
//! plugins dir (watched with `notify`, debounced), or SIGHUP, re-reads everything
//! off the request path and swaps the route table atomically. Requests and
//! deliveries in flight finish on the table they started with; a reload
//! that fails changes nothing, and says why. systemd is told of each
//! reload (RELOADING=1, then READY=1).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::config::{Config, ConfigError, PluginsConfig, ServerConfig};
use crate::metrics::Metrics;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::tls::Certificate;

pub struct Reloader {
    config_path: PathBuf,
    runtime: Arc<Runtime>,
    routes: Arc<ArcSwap<RouteTable>>,
    metrics: Arc<Metrics>,
    /// The listener's certificate, when it serves TLS: a reload swaps in
    /// the one it read.
    certificate: Option<Certificate>,
    /// The `[server]` table at start: its listeners need a restart to change.
    started: ServerConfig,
    /// The `[plugins]` table at start: the runtime's fetch client and
    /// compilation cache are built once.
    started_plugins: PluginsConfig,
    /// One reload at a time: a second waits and then sees the newest files.
    serial: tokio::sync::Mutex<()>,
    failures: AtomicU64,
    last: std::sync::Mutex<Option<LastReload>>,
}

/// The latest reload, for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastReload {
    pub at_ms: u64,
    pub cause: String,
    pub ok: bool,
}

impl Reloader {
    pub fn new(
        config_path: PathBuf,
        runtime: Arc<Runtime>,
        routes: Arc<ArcSwap<RouteTable>>,
        metrics: Arc<Metrics>,
        certificate: Option<Certificate>,
        plugins: &PluginsConfig,
    ) -> Arc<Self> {
        let started = routes.load().server.clone();
        Arc::new(Self {
            config_path,
            runtime,
            routes,
            metrics,
            certificate,
            started,
            started_plugins: plugins.clone(),
            serial: tokio::sync::Mutex::new(()),
            failures: AtomicU64::new(0),
            last: std::sync::Mutex::new(None),
        })
    }

    /// Failed reloads since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The latest reload since start, if any.
    pub fn last(&self) -> Option<LastReload> {
        self.last.lock().expect("last reload lock").clone()
    }

    /// Re-reads config and plugins; swaps them in if all is well.
    pub async fn reload(&self, cause: &str) -> Result<(), ConfigError> {
        let _one_at_a_time = self.serial.lock().await;
        crate::service::reloading();
        let span = tracing::info_span!(
            target: crate::telemetry::TARGET,
            "reload",
            otel.status_code = Empty,
            wirehook.cause = cause,
            wirehook.outcome = Empty,
            wirehook.problems = Empty,
        );
        let result = self.rebuild(cause).instrument(span.clone()).await;
        if !span.is_disabled() {
            match &result {
                Ok(()) => span.record("wirehook.outcome", "swapped"),
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("wirehook.problems", error.problems.len());
                    span.record("wirehook.outcome", "refused")
                }
            };
        }
        *self.last.lock().expect("last reload lock") = Some(LastReload {
            at_ms: crate::clock::UnixMs::now().0,
            cause: cause.to_owned(),
            ok: result.is_ok(),
        });
        crate::service::ready();
        result
    }

    async fn rebuild(&self, cause: &str) -> Result<(), ConfigError> {
        let (path, runtime, previous) = (
            self.config_path.clone(),
            self.runtime.clone(),
            self.routes.load_full(),
        );
        // Compiling a plugin takes a while: not on an async worker.
        let built = tokio::task::spawn_blocking(move || {
            let refused = |problems| ConfigError {
                file: path.clone(),
                problems,
            };
            let config = Config::load(&path)?.resolve().map_err(refused)?;
            let table = RouteTable::build(&config, &runtime, Some(&previous)).map_err(refused)?;
            Ok::<_, ConfigError>((config, table))
        })
        .await
        .expect("reload task panicked");
        match built {
            Ok((config, table)) => {
                self.warn_of_restart(&config.server, &config.plugins);
                let routes = config.routes.len();
                if let (Some(certificate), Some(loaded)) = (&self.certificate, &table.tls) {
                    certificate.swap(loaded.clone());
                }
                self.routes.store(Arc::new(table));
                self.metrics.reloaded();
                tracing::info!(cause, routes, "reloaded");
                Ok(())
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                self.metrics.reload_failed();
                for problem in &error.problems {
                    tracing::error!(cause, file = %error.file.display(), key = %problem.key, failures, "reload failed: {}", problem.reason);
                }
                Err(error)
            }
        }
    }

    /// Listeners, the fetch client and the compilation cache are built
    /// once, at start.
    fn warn_of_restart(&self, server: &ServerConfig, plugins: &PluginsConfig) {
        let started = &self.started;
        if server.listen != started.listen {
            tracing::warn!(
                configured = %server.listen,
                serving = %started.listen,
                "server.listen changed: the new address needs a restart"
            );
        }
        if server.metrics_listen != started.metrics_listen {
            tracing::warn!("server.metrics_listen changed: the change needs a restart");
        }
        if server.tls.is_some() != started.tls.is_some() {
            tracing::warn!("server.tls was added or removed: the change needs a restart");
        }
        let was = &self.started_plugins;
        for (key, changed) in [
            (
                "fetch_timeout_ms",
                plugins.fetch_timeout_ms != was.fetch_timeout_ms,
            ),
            (
                "fetch_max_response_bytes",
                plugins.fetch_max_response_bytes != was.fetch_max_response_bytes,
            ),
            ("cache_dir", plugins.cache_dir != was.cache_dir),
        ] {
            if changed {
                tracing::warn!(key = %format!("plugins.{key}"), "plugins.{key} changed: the change needs a restart");
            }
        }
    }

    /// Watches the config file and the plugins dir; reloads after each
    /// burst of changes has been quiet for `debounce`. The watcher stops
    /// when the returned value is dropped.
    pub fn watch(
        self: &Arc<Self>,
        plugins_dir: &Path,
        debounce: Duration,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let config_file = self.config_path.file_name().map(ToOwned::to_owned);
        let config_dir = parent_dir(&self.config_path);
        // The file the config path leads to through symlinks: swapping a
        // symlink in the path (as Kubernetes does with a ConfigMap's
        // `..data`) changes it without an event naming the config file.
        let config_path = self.config_path.clone();
        let mut target = std::fs::canonicalize(&config_path).ok();
        let (changed, mut changes) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, notify::EventKind::Access(_)) {
                    return;
                }
                // Only the config file and `.wasm` files matter; the store and
                // compilation cache may live in the same directories.
                let named = event.paths.iter().any(|p| {
                    p.extension().is_some_and(|e| e == "wasm")
                        || (p.file_name().map(ToOwned::to_owned) == config_file)
                });
                let resolved = std::fs::canonicalize(&config_path).ok();
                let swapped = resolved != target;
                target = resolved;
                if named || swapped {
                    let _ = changed.send(());
                }
            })?;
        // Directories, not files: editors replace a file by renaming over it.
        watcher.watch(&config_dir, RecursiveMode::NonRecursive)?;
        if plugins_dir.is_dir() {
            watcher.watch(plugins_dir, RecursiveMode::NonRecursive)?;
        }
        tracing::debug!(config = %self.config_path.display(), plugins = %plugins_dir.display(), "watching for changes");
        let reloader = self.clone();
        tokio::spawn(async move {
            while changes.recv().await.is_some() {
                loop {
                    tokio::select! {
                        more = changes.recv() => if more.is_none() { return },
                        _ = tokio::time::sleep(debounce) => break,
                    }
                }
                // Failures are logged and counted by `reload`.
                let _ = reloader.reload("files changed").await;
            }
        });
        Ok(watcher)
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}
