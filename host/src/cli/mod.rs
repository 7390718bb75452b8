//! The command line: `wirehook run` serves, `wirehook check` validates,
//! and the delivery-log commands (see [`deliveries`]) inspect the store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigError};
use crate::dispatch::Dispatcher;
use crate::store::{KvStore, SqliteStore, Store};

mod deliveries;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::server::{self, App};

#[derive(Debug, Parser)]
#[command(
    name = "wirehook",
    version,
    about = "Verify, decode and hand webhooks to WebAssembly plugins"
)]
pub struct Cli {
    /// Log line format.
    #[arg(
        long,
        global = true,
        env = "WIREHOOK_LOG_FORMAT",
        default_value = "human"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
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
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run(&args.config),
        Command::Check(args) => check(&args.config),
        Command::Events(args) => deliveries::events(args),
        Command::Replay(args) => deliveries::replay(args),
        Command::DeadLetters(command) => deliveries::dead_letters(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// What `run` and `check` load: config, the store (for `run`), the plugin
/// runtime and the route table.
struct Loaded {
    config: Config,
    store: Option<Arc<SqliteStore>>,
    _runtime: Runtime,
    table: RouteTable,
}

/// Loads everything; on a config problem prints every problem and
/// returns `None`.
fn load(path: &Path, open_store: bool) -> anyhow::Result<Option<Loaded>> {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report(&e);
            return Ok(None);
        }
    };
    let store = if open_store {
        let store = SqliteStore::open(&config.storage.path)
            .with_context(|| format!("opening the store in {}", config.storage.path.display()))?;
        Some(Arc::new(store))
    } else {
        None
    };
    let kv = store.clone().map(|s| s as Arc<dyn KvStore>);
    let runtime = Runtime::new(
        Some(&config.storage.path.join("cache")),
        kv,
        &config.plugins,
    )
    .context("starting the plugin runtime")?;
    match RouteTable::build(&config, &runtime) {
        Ok(table) => Ok(Some(Loaded {
            config,
            store,
            _runtime: runtime,
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
        println!("{}: {}", error.file.display(), problem);
    }
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load(path, false)? else {
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "{}: ok ({} routes, {} plugins)",
        path.display(),
        loaded.config.routes.len(),
        loaded.table.plugins().count()
    );
    Ok(ExitCode::SUCCESS)
}

fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let Some(Loaded {
            config,
            store,
            _runtime,
            table,
        }) = load(path, true)?
        else {
            return Ok(ExitCode::FAILURE);
        };
        let store: Arc<dyn Store> = store.expect("run opens the store");
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding server.listen {}", config.server.listen))?;
        let routes = Arc::new(table);
        let dispatcher = Dispatcher::start(store, routes.clone(), config.delivery.clone()).await?;
        tracing::info!(
            addr = %listener.local_addr()?,
            routes = config.routes.len(),
            plugins = routes.plugins().count(),
            "listening"
        );
        let app = Arc::new(App {
            routes,
            server: config.server.clone(),
            dispatcher: dispatcher.clone(),
        });
        server::serve(listener, app, shutdown_signal()).await?;
        dispatcher.shutdown().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
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
