//! The daemon as a library: [`load`] reads a config file and builds what
//! it names (the store, the plugin runtime, the route table); [`run`]
//! serves it on listeners the caller bound until a shutdown future
//! resolves. `wirehook run` is the two with the process's signals; tests
//! run the daemon in-process through them, on ports they know.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError, Resolved};
use crate::dispatch::Dispatcher;
use crate::metrics::{self, Metrics};
use crate::reload::Reloader;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::server::{self, App};
use crate::service;
use crate::store::{self as stores, KvStore, Role, Store};
use crate::tls::{Certificate, TlsHandshake};

mod ready;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config is wrong: every problem, by key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something else failed (the store, the runtime).
    #[error(transparent)]
    Start(#[from] anyhow::Error),
}

/// A config, loaded: what [`run`] serves, or what `wirehook check` checks
/// (without a store).
pub struct Loaded {
    /// The config file, read again on every reload.
    pub path: PathBuf,
    pub config: Resolved,
    pub store: Option<Arc<dyn Store>>,
    pub runtime: Arc<Runtime>,
    pub table: RouteTable,
    /// When loading began: the ready line says how long the start took.
    pub started: std::time::Instant,
}

/// Reads and resolves the config at `path`, opens the store (when
/// `open_store`), starts the plugin runtime and builds the route table.
pub async fn load(path: &Path, open_store: bool) -> Result<Loaded, LoadError> {
    let started = std::time::Instant::now();
    let refused = |problems| ConfigError {
        file: path.to_owned(),
        problems,
    };
    let config = Config::load(path)?.resolve().map_err(refused)?;
    let store = if open_store {
        Some(
            stores::open(
                &config.storage,
                config.database_url.as_ref(),
                &config.delivery,
                Role::Daemon,
                crate::providers::redecode,
            )
            .await
            .with_context(|| format!("opening the store {}", stores::location(&config.storage)))?,
        )
    } else {
        None
    };
    let kv = (store.clone()).map(|s| Arc::new(crate::store::TracedKv::new(s)) as Arc<dyn KvStore>);
    let cache_dir =
        (config.plugins.cache_dir.clone()).unwrap_or_else(|| config.storage.path.join("cache"));
    let runtime = Runtime::new(Some(&cache_dir), kv, &config.plugins)
        .context("starting the plugin runtime")?;
    let table = RouteTable::build(&config, &runtime, None).map_err(refused)?;
    Ok(Loaded {
        path: path.to_owned(),
        config,
        store,
        runtime: Arc::new(runtime),
        table,
        started,
    })
}

/// The sockets the daemon serves on, bound before it starts, so that a
/// caller knows the addresses (`127.0.0.1:0` binds a free port).
pub struct Listeners {
    pub server: TcpListener,
    /// `/metrics`, when `server.metrics_listen` is set.
    pub metrics: Option<TcpListener>,
    /// The admin API and console, when `admin.listen` is set.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds `server.listen`, `server.metrics_listen` and `admin.listen`.
    pub async fn bind(config: &Resolved) -> anyhow::Result<Self> {
        let server = &config.server;
        let listener = TcpListener::bind(server.listen)
            .await
            .with_context(|| format!("binding server.listen {}", server.listen))?;
        let metrics = match server.metrics_listen {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let admin = crate::admin::bind(&config.admin).await?;
        Ok(Self {
            server: listener,
            metrics,
            admin,
        })
    }

    /// The address webhooks are served on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.server.local_addr()
    }
}

/// How the daemon stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `shutdown` resolved and requests in flight finished.
    Asked,
    /// The store could no longer write: the service manager should
    /// restart the daemon.
    StoreFailed,
}

/// Serves `loaded` on `listeners` until `shutdown` resolves (or the store
/// fails): deliveries, reloads on SIGHUP and on changes to the config
/// file or the plugins dir, `/metrics`, and systemd's notifications.
pub async fn run(
    loaded: Loaded,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Stopped> {
    let Loaded {
        path,
        config,
        store,
        runtime,
        table,
        started,
    } = loaded;
    let store = store.context("the daemon needs its store: `load` it with `open_store` set")?;
    let writer_gone = store.gone();
    let metrics = Arc::new(Metrics::new(stores::files(&config.storage)));
    let plugins = table.plugins().count();
    let precompiled = table.plugins().filter(|p| p.is_precompiled()).count();
    let certificate = table.tls.clone().map(Certificate::new);
    let routes = Arc::new(ArcSwap::from_pointee(table));
    let dispatcher = Dispatcher::start(
        store.clone(),
        routes.clone(),
        config.delivery.clone(),
        metrics.clone(),
    )
    .await?;
    let listen = listeners.server.local_addr()?;
    let reloader = Reloader::new(
        path,
        runtime,
        routes.clone(),
        metrics.clone(),
        certificate.clone(),
        &config.plugins,
    );
    let admin = crate::admin::Admin::new(
        &config.admin,
        store,
        routes.clone(),
        metrics.clone(),
        reloader.clone(),
    );
    let _watcher = if config.reload.watch {
        let debounce = std::time::Duration::from_millis(config.reload.debounce_ms);
        Some(
            reloader
                .watch(&config.plugins.dir, debounce)
                .context("watching the config file and plugins dir")?,
        )
    } else {
        None
    };
    reload_on_sighup(reloader)?;

    // One shutdown signal, fanned out to every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let metrics_addr = match listeners.metrics {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let serving =
                metrics::serve(listener, metrics.clone(), routes.clone(), until_stopped());
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!("serving /metrics: {e}");
                }
            });
            Some(addr)
        }
        None => None,
    };
    let admin_addr = match (listeners.admin, admin) {
        (Some(listener), Some(admin)) => {
            let addr = listener.local_addr()?;
            let serving = crate::admin::serve(
                listener,
                admin,
                certificate.clone(),
                config.admin.max_connections,
                until_stopped(),
            );
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::error!("serving the admin API: {e}");
                }
            });
            Some(addr)
        }
        _ => None,
    };
    // A store that can no longer write cannot accept anything: stop, and
    // say so, so that the service manager restarts us (the unit's
    // Restart=on-failure) rather than probes seeing a daemon that answers
    // but cannot queue.
    let store_failed = Arc::new(AtomicBool::new(false));
    let failed = store_failed.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = writer_gone => {
                failed.store(true, Ordering::Relaxed);
                tracing::error!("store writer is gone: shutting down to be restarted");
            }
        }
        service::stopping();
        let _ = stop.send(true);
    });
    let app = Arc::new(App {
        routes: routes.clone(),
        dispatcher: dispatcher.clone(),
        metrics,
    });
    let took = started.elapsed();
    tracing::info!(
        addr = %listen,
        tls = certificate.is_some(),
        metrics_addr = metrics_addr.map(|a| a.to_string()),
        admin_addr = admin_addr.map(|a| a.to_string()),
        routes = config.routes.len(),
        plugins,
        precompiled,
        took_ms = took.as_millis() as u64,
        "listening"
    );
    let ready = ready::Ready {
        addr: listen,
        tls: certificate.is_some(),
        metrics: metrics_addr,
        admin: admin_addr,
        took,
    };
    println!(
        "{}",
        crate::text::escape(&ready::line(&routes.load(), &ready))
    );
    service::ready();
    service::spawn_watchdog();
    match certificate {
        Some(certificate) => {
            let handshake = TlsHandshake::new(certificate);
            server::serve(listeners.server, handshake, app, until_stopped()).await?;
        }
        None => server::serve(listeners.server, server::Plain, app, until_stopped()).await?,
    }
    dispatcher.shutdown().await;
    if store_failed.load(Ordering::Relaxed) {
        tracing::error!("stopped: the store failed");
        return Ok(Stopped::StoreFailed);
    }
    tracing::info!("stopped");
    Ok(Stopped::Asked)
}

/// SIGHUP (`systemctl reload`) reloads config and plugins.
fn reload_on_sighup(reloader: Arc<Reloader>) -> anyhow::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // Failures are logged and counted by `reload`.
            let _ = reloader.reload("SIGHUP").await;
        }
    });
    Ok(())
}
