//! The command line: `wirehook run` serves, `wirehook check` validates,
//! the delivery-log commands (see [`deliveries`]) inspect the store, and
//! `wirehook sign` prints the request a provider would send.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{
    Config, ConfigError, HmacAlgorithm, LogConfig, LogFormat, RouteConfig, SignatureEncoding,
};
use crate::dispatch::Dispatcher;
use crate::metrics::{self, Metrics};
use crate::providers::{self, ProviderConfig, Signed};
use crate::reload::Reloader;
use crate::store::{self as stores, KvStore, Role, Store};
use arc_swap::ArcSwap;

mod deliveries;
mod new;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::secret::SecretSource;
use crate::server::{self, App};
use crate::service;
use crate::tls::TlsHandshake;

#[derive(Debug, Parser)]
#[command(
    name = "wirehook",
    version,
    about = "Verify, decode and hand webhooks to WebAssembly plugins"
)]
pub struct Cli {
    /// Log line format [default: the config's `log.format`, else human].
    #[arg(long, global = true, env = "WIREHOOK_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every configured route.
    Run(ConfigArg),
    /// Validate the config and load every plugin; print each problem.
    Check(ConfigArg),
    /// The delivery log: events, their status, attempts and last error.
    Events(deliveries::EventsArgs),
    /// Re-queue events by id for an immediate attempt.
    Replay(deliveries::ReplayArgs),
    /// Inspect, replay and purge dead letters.
    #[command(subcommand)]
    DeadLetters(deliveries::DeadLetters),
    /// Print the request a provider would send for a JSON payload: header
    /// lines, a blank line, the body. For testing a route by hand.
    Sign(SignArgs),
    /// Scaffold a plugin project (source, build script, WIT) in a language.
    New(new::NewArgs),
}

#[derive(Debug, clap::Args)]
struct SignArgs {
    /// The provider id, as in a route's `provider`.
    #[arg(long)]
    provider: String,
    /// The route's secret: the value itself, `env:VAR` or `file:PATH`.
    #[arg(long)]
    secret: String,
    /// The JSON payload; standard input when absent or `-`.
    file: Option<PathBuf>,
    /// `NAME`: the route's `header`; `NAME=VALUE`: a further header of the
    /// route's `headers` table (VALUE as in config: itself, `env:VAR` or
    /// `file:PATH`). Repeatable.
    #[arg(long = "header", value_name = "NAME[=VALUE]")]
    headers: Vec<String>,
    /// `hmac`: the route's `algorithm`.
    #[arg(long, value_enum)]
    algorithm: Option<HmacAlgorithm>,
    /// `hmac`: the route's `encoding`.
    #[arg(long, value_enum)]
    encoding: Option<SignatureEncoding>,
    /// `hmac`: the route's `prefix`.
    #[arg(long)]
    prefix: Option<String>,
    /// Print a ready curl command that POSTs the request to URL instead.
    #[arg(long, value_name = "URL")]
    curl: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArg {
    /// The config file.
    #[arg(long, env = "WIREHOOK_CONFIG", default_value = "config/wirehook.toml")]
    pub(crate) config: PathBuf,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match &cli.command {
        Command::Run(args) | Command::Check(args) => Config::log_settings(&args.config),
        _ => LogConfig::default(),
    };
    crate::logging::init(
        cli.log_format.unwrap_or(settings.format),
        settings.level.as_deref(),
    );
    let result = match cli.command {
        Command::Run(args) => run(&args.config),
        Command::Check(args) => check(&args.config),
        Command::Events(args) => deliveries::events(args),
        Command::Replay(args) => deliveries::replay(args),
        Command::DeadLetters(command) => deliveries::dead_letters(command),
        Command::Sign(args) => sign(&args),
        Command::New(args) => new::new(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `run` and `check` load: config, the store (for `run`), the plugin
/// runtime and the route table.
struct Loaded {
    config: Config,
    store: Option<Arc<dyn Store>>,
    runtime: Arc<Runtime>,
    table: RouteTable,
}

/// Loads everything; on a config problem prints every problem and
/// returns `None`.
async fn load(path: &Path, open_store: bool) -> anyhow::Result<Option<Loaded>> {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return Ok(None);
        }
    };
    let store = if open_store {
        let store = stores::open(&config.storage, &config.delivery, Role::Daemon)
            .await
            .with_context(|| format!("opening the store {}", stores::location(&config.storage)))?;
        Some(store)
    } else {
        None
    };
    let kv = store.clone().map(|s| s as Arc<dyn KvStore>);
    let cache_dir =
        (config.plugins.cache_dir.clone()).unwrap_or_else(|| config.storage.path.join("cache"));
    let runtime = Runtime::new(Some(&cache_dir), kv, &config.plugins)
        .context("starting the plugin runtime")?;
    match RouteTable::build(&config, &runtime, None) {
        Ok(table) => Ok(Some(Loaded {
            config,
            store,
            runtime: Arc::new(runtime),
            table,
        })),
        Err(problems) => {
            report(&ConfigError {
                file: path.to_owned(),
                problems,
            });
            Ok(None)
        }
    }
}

fn report(error: &ConfigError) {
    for problem in &error.problems {
        tracing::error!(file = %error.file.display(), key = %problem.key, "{}", problem.reason);
        let line = format!("{}: {}", error.file.display(), problem);
        println!("{}", crate::text::escape(&line));
    }
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(load(path, false))?;
    let Some(loaded) = loaded else {
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "{}: ok ({} routes, {} plugins)",
        path.display(),
        loaded.config.routes.len(),
        loaded.table.plugins().count()
    );
    for name in loaded.table.unused_plugins() {
        println!(
            "unused: plugin `{name}` is in the plugins dir, but no route or [plugin.{name}] names it (not loaded)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let Some(Loaded {
            config,
            store,
            runtime: plugin_runtime,
            table,
        }) = load(path, true).await?
        else {
            return Ok(ExitCode::FAILURE);
        };
        let store = store.expect("run opens the store");
        let writer_gone = store.gone();
        let metrics = Arc::new(Metrics::new(stores::files(&config.storage)));
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding server.listen {}", config.server.listen))?;
        let metrics_listener = match config.server.metrics_listen {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let plugins = table.plugins().count();
        let tls = table.tls.clone();
        let routes = Arc::new(ArcSwap::from_pointee(table));
        let dispatcher = Dispatcher::start(
            store,
            routes.clone(),
            config.delivery.clone(),
            metrics.clone(),
        )
        .await?;
        let listen = listener.local_addr()?;
        let reloader = Reloader::new(
            path.to_owned(),
            plugin_runtime,
            routes.clone(),
            metrics.clone(),
            &config.plugins,
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
        let metrics_addr = match metrics_listener {
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
        // A store that can no longer write cannot accept anything: stop,
        // and exit with an error so that the service manager restarts us
        // (the unit's Restart=on-failure) rather than probes seeing a
        // daemon that answers but cannot queue.
        let store_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failed = store_failed.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                _ = writer_gone => {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
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
        tracing::info!(
            addr = %listen,
            tls = tls.is_some(),
            metrics_addr = metrics_addr.map(|a| a.to_string()),
            routes = config.routes.len(),
            plugins,
            "listening"
        );
        service::ready();
        service::spawn_watchdog();
        match tls {
            Some(tls) => {
                let handshake = TlsHandshake::new(routes, tls);
                server::serve(listener, handshake, app, until_stopped()).await?;
            }
            None => server::serve(listener, server::Plain, app, until_stopped()).await?,
        }
        dispatcher.shutdown().await;
        if store_failed.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::error!("stopped: the store failed");
            return Ok(ExitCode::FAILURE);
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
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

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Builds the provider from a route made of the arguments, exactly as the
/// daemon builds it from config, and prints what it signs.
fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let secret = SecretSource::from(args.secret.clone())
        .resolve()
        .map_err(|reason| anyhow::anyhow!("--secret: {reason}"))?;
    let mut route = RouteConfig::bare(&args.provider);
    let mut headers = Vec::new();
    for header in &args.headers {
        match header.split_once('=') {
            Some((name, value)) => {
                // Read as the route's `headers` values are: an empty one is
                // refused here as it is in config.
                let source = SecretSource::from(value.to_owned());
                let value = source
                    .resolve()
                    .map_err(|reason| anyhow::anyhow!("--header {name}: {reason}"))?;
                route.headers.insert(name.to_owned(), source);
                headers.push((name.to_owned(), value));
            }
            None if route.header.is_none() => route.header = Some(header.clone()),
            None => anyhow::bail!(
                "--header: only one NAME (the route's `header`); further ones are NAME=VALUE"
            ),
        }
    }
    route.algorithm = args.algorithm;
    route.encoding = args.encoding;
    route.prefix = args.prefix.clone();
    let provider = providers::build(&ProviderConfig {
        route: &route,
        secret: Some(secret),
        headers,
        slow_checks: providers::SlowChecks::default(),
    })
    .map_err(|issue| anyhow::anyhow!("--{}: {}", issue.field.replace('_', "-"), issue.reason))?;

    let mut payload = Vec::new();
    match &args.file {
        Some(path) if path != Path::new("-") => {
            payload = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut payload)
                .context("reading the payload from standard input")?;
        }
    }
    // Editors and `echo` end files with a newline; it is not part of the JSON.
    let payload = payload.trim_ascii_end();
    serde_json::from_slice::<serde::de::IgnoredAny>(payload).context("the payload is not JSON")?;
    let signed = provider
        .sign(payload, std::time::SystemTime::now())
        .map_err(|reason| anyhow::anyhow!("cannot sign: {reason}"))?;
    let text = match &args.curl {
        Some(url) => curl_command(url, &signed),
        None => raw_request(&signed),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `Name: value` lines, a blank line, the body and one newline (which is
/// not part of the body: bodies never end in one).
pub fn raw_request(signed: &Signed) -> String {
    let mut out = String::new();
    for (name, value) in &signed.headers {
        out.push_str(&format!("{name}: {value}\n"));
    }
    out.push('\n');
    out.push_str(&String::from_utf8_lossy(&signed.body));
    out.push('\n');
    out
}

/// A POSIX-shell curl command sending exactly `signed` to `url`.
pub fn curl_command(url: &str, signed: &Signed) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let mut out = format!("curl -sS -i {}", quote(url));
    for (name, value) in &signed.headers {
        out.push_str(&format!(" \\\n  -H {}", quote(&format!("{name}: {value}"))));
    }
    out.push_str(&format!(
        " \\\n  --data-binary {}\n",
        quote(&String::from_utf8_lossy(&signed.body))
    ));
    out
}
