//! The command line: `wirehook run` serves, `wirehook check` validates,
//! the delivery-log commands (see [`deliveries`]) inspect the store,
//! `wirehook sign` prints the request a provider would send, `wirehook
//! init` writes a starter config, `wirehook compile` compiles plugins
//! ahead of time, and `wirehook call` and `wirehook replay --dry-run` try
//! plugins on events (see [`call`] and [`dry_run`]).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum as _};

use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::config::provider::{ProviderId, ProviderOptions};
use crate::config::{Config, ConfigError, LogConfig, LogFormat};
use crate::daemon;
use crate::providers::{self, ProviderConfig, Signed};
use crate::secret::SecretSource;

mod call;
mod compile;
mod deliveries;
mod dry_run;
mod init;
mod new;
mod sign_plugin;

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
    /// Validate the config and load every plugin; print each problem, and
    /// the WIT version each plugin targets.
    Check(ConfigArg),
    /// The delivery log: events, their status, attempts and last error.
    Events(deliveries::EventsArgs),
    /// Re-queue events by id for an immediate attempt; or, with
    /// `--dry-run`, run stored events through a candidate build of a
    /// plugin with no effects and compare its replies.
    Replay(deliveries::ReplayArgs),
    /// Run one event through one plugin: the reply's JSON on stdout; its
    /// status, the plugin's log lines and host calls on stderr. Exit 0 for
    /// a reply or none, 1 retry, 2 drop, 3 trap or timeout, 4 bad input.
    Call(call::CallArgs),
    /// Inspect, replay and purge dead letters.
    #[command(subcommand)]
    DeadLetters(deliveries::DeadLetters),
    /// Print the request a provider would send for a JSON payload: header
    /// lines, a blank line, the body. For testing a route by hand.
    Sign(SignArgs),
    /// Scaffold a plugin project (source, build script, WIT) in a language.
    New(new::NewArgs),
    /// Write a commented starter config for the providers you name.
    Init(init::InitArgs),
    /// Compile every plugin in a dir ahead of time (NAME.cwasm beside
    /// NAME.wasm), so that a start loads them without compiling.
    Compile(compile::CompileArgs),
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
    /// `twilio` and provider plugins: the route's `public_url`, the URL
    /// the provider calls.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Print a ready curl command that POSTs the request to URL instead.
    #[arg(long, value_name = "URL")]
    curl: Option<String>,
    /// `plugin:NAME`: its component (`plugins/dist/NAME.wasm` when absent).
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
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
    let (settings, telemetry) = match &cli.command {
        Command::Run(args) => (
            Config::log_settings(&args.config),
            Config::telemetry_settings(&args.config),
        ),
        Command::Check(args) => (Config::log_settings(&args.config), Default::default()),
        _ => (LogConfig::default(), Default::default()),
    };
    let telemetry = crate::logging::init(
        cli.log_format.unwrap_or(settings.format),
        settings.level.as_deref(),
        &telemetry,
    );
    let result = match cli.command {
        Command::Run(args) => run(&args.config),
        Command::Check(args) => check(&args.config),
        Command::Events(args) => deliveries::events(args),
        Command::Replay(args) => deliveries::replay(args),
        Command::DeadLetters(command) => deliveries::dead_letters(command),
        Command::Sign(args) => sign(&args),
        Command::New(args) => new::new(&args),
        Command::Init(args) => init::init(&args),
        Command::Compile(args) => compile::compile(&args),
        Command::Call(args) => call::call(args),
    };
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config at `path` (see [`daemon::load`]); on a config
/// problem prints every problem and returns `None`.
async fn load(path: &Path, open_store: bool) -> anyhow::Result<Option<daemon::Loaded>> {
    match daemon::load(path, open_store).await {
        Ok(loaded) => Ok(Some(loaded)),
        Err(daemon::LoadError::Config(e)) => {
            report(&e);
            Ok(None)
        }
        Err(daemon::LoadError::Start(e)) => Err(e),
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
    let mut plugins: Vec<_> = loaded.table.plugins().collect();
    plugins.sort_by(|a, b| a.name().cmp(b.name()));
    for plugin in plugins {
        println!(
            "plugin `{}`: wirehook:plugin@{}",
            plugin.name(),
            plugin.wit()
        );
    }
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
        let Some(loaded) = load(path, true).await? else {
            return Ok(ExitCode::FAILURE);
        };
        let listeners = daemon::Listeners::bind(&loaded.config).await?;
        match daemon::run(loaded, listeners, shutdown_signal()).await? {
            daemon::Stopped::Asked => Ok(ExitCode::SUCCESS),
            daemon::Stopped::StoreFailed => Ok(ExitCode::FAILURE),
        }
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

/// Builds the provider from a route made of the arguments, exactly as the
/// daemon builds it from config, and prints what it signs.
fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let secret = SecretSource::from(args.secret.clone())
        .resolve()
        .map_err(|reason| anyhow::anyhow!("--secret: {reason}"))?;
    // The route first: a flag no route could have is refused before the
    // payload is waited for on standard input.
    let plugin = args
        .provider
        .strip_prefix(crate::config::provider::PLUGIN_PREFIX);
    let builtin = match plugin {
        Some(_) => None,
        None => {
            let id: ProviderId = args.provider.parse()?;
            let options = sign_options(id, args)?;
            let provider = providers::build(&ProviderConfig {
                options: &options,
                secret: Some(secret.clone()),
                slow_checks: providers::SlowChecks::default(),
            })
            .map_err(|issue| {
                anyhow::anyhow!("--{}: {}", issue.field.replace('_', "-"), issue.reason)
            })?;
            Some(provider)
        }
    };
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
    let signed = match (plugin, builtin) {
        (_, Some(provider)) => provider
            .sign(payload, std::time::SystemTime::now())
            .map_err(|reason| anyhow::anyhow!("cannot sign: {reason}"))?,
        (Some(name), None) => {
            let wasm = sign_plugin::wasm_path(name, args.wasm.as_deref());
            sign_plugin::sign(name, &wasm, secret, args.public_url.clone(), payload)?
        }
        (None, None) => unreachable!("a built-in provider is built above"),
    };
    let text = match &args.curl {
        Some(url) => curl_command(url, &signed),
        None => raw_request(&signed),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The options of a route made of `wirehook sign`'s arguments, read as a
/// route's keys are, so that a flag the provider does not read, or an
/// empty header value, is refused here as it is in config.
fn sign_options(id: ProviderId, args: &SignArgs) -> anyhow::Result<ProviderOptions> {
    use figment::value::{Dict, Value};
    let mut keys = Dict::new();
    let mut headers = Dict::new();
    for header in &args.headers {
        match header.split_once('=') {
            Some((name, value)) => {
                headers.insert(name.to_owned(), Value::from(value.to_owned()));
            }
            None if !keys.contains_key("header") => {
                keys.insert("header".to_owned(), Value::from(header.clone()));
            }
            None => anyhow::bail!(
                "--header: only one NAME (the route's `header`); further ones are NAME=VALUE"
            ),
        }
    }
    if !headers.is_empty() {
        keys.insert("headers".to_owned(), Value::from(headers));
    }
    let named = |value: Option<clap::builder::PossibleValue>| {
        value.map(|value| Value::from(value.get_name().to_owned()))
    };
    let algorithm = named(args.algorithm.and_then(|a| a.to_possible_value()));
    let encoding = named(args.encoding.and_then(|e| e.to_possible_value()));
    for (key, value) in [
        ("algorithm", algorithm),
        ("encoding", encoding),
        ("prefix", args.prefix.clone().map(Value::from)),
        ("public_url", args.public_url.clone().map(Value::from)),
    ] {
        if let Some(value) = value {
            keys.insert(key.to_owned(), value);
        }
    }
    let mut problems = Vec::new();
    match ProviderOptions::resolve(id, &keys, "", &mut problems) {
        Some(options) => Ok(options),
        None => {
            let flag = |key: &str| match key.strip_prefix("headers.") {
                Some(name) => format!("--header {name}"),
                None if key == "headers" => "--header".to_owned(),
                None => format!("--{}", key.replace('_', "-")),
            };
            let lines: Vec<String> = problems
                .iter()
                .map(|problem| format!("{}: {}", flag(&problem.key), problem.reason))
                .collect();
            anyhow::bail!("{}", lines.join("; "))
        }
    }
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
