//! `wirehook call PLUGIN`: one event through one plugin, from a terminal.
//! The reply's JSON body alone goes to stdout (so it pipes into `jq`);
//! its status, the plugin's log lines and the host calls it made go to
//! stderr; the exit code says how the call ended ([`Exit`]).
//!
//! The plugin runs with the grants of its `[plugin.NAME]` table, under
//! the daemon's limits; `--no-effects` contains it (see
//! [`crate::runtime::trial`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use super::ConfigArg;
use crate::config::{Config, ConfigError, Resolved};
use crate::event::{Event, Source};
use crate::runtime::{
    CallError, Effects, HostCall, MemoryKv, Plugin, PluginEvent, Reply, Runtime, Trial,
};
use crate::store::{self as stores, KvStore, Role, Store};
use crate::text;

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The plugin: its `.wasm` file stem in the plugins dir, and the
    /// `[plugin.NAME]` table that grants it capabilities.
    plugin: String,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    input: Input,
    /// Run this `.wasm` (a build not yet in the plugins dir) instead.
    #[arg(long, value_name = "PATH")]
    wasm: Option<PathBuf>,
    /// Refuse fetch (each request is listed) and keep KV writes in
    /// memory, over a snapshot of the plugin's KV.
    #[arg(long)]
    no_effects: bool,
}

/// The event to send: one of the three forms.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = true)]
struct Input {
    /// The provider whose payload `--payload` is, as in a route's
    /// `provider`.
    #[arg(long, requires = "payload")]
    provider: Option<String>,
    /// The payload as the provider sends it, decoded as a route of that
    /// provider decodes it (no signature needed).
    #[arg(long, requires = "provider", value_name = "FILE")]
    payload: Option<PathBuf>,
    /// An event as JSON, as `dead-letters show --json` prints it (the
    /// whole object, or its `event`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["provider", "payload", "stored"])]
    event: Option<PathBuf>,
    /// An event from the store, by id (as `wirehook events` lists it).
    #[arg(long, value_name = "ID", conflicts_with_all = ["provider", "payload"])]
    stored: Option<i64>,
}

/// How a call ended, as its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Exit {
    /// A reply, or none.
    Answered = 0,
    Retry = 1,
    Drop = 2,
    /// A trap, a timeout, or an instance that could not start.
    Failed = 3,
    /// wirehook's own: bad arguments, input or config.
    Unusable = 4,
}

impl From<&Result<Option<Reply>, CallError>> for Exit {
    fn from(result: &Result<Option<Reply>, CallError>) -> Self {
        match result {
            Ok(_) => Self::Answered,
            Err(CallError::Retry(_)) => Self::Retry,
            Err(CallError::Drop(_)) => Self::Drop,
            Err(CallError::Trap(_) | CallError::Timeout(_) | CallError::Instantiate(_)) => {
                Self::Failed
            }
        }
    }
}

pub fn call(args: CallArgs) -> anyhow::Result<ExitCode> {
    let exit = match run(args) {
        Ok(exit) => exit,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("wirehook call: {}", text::escape(&format!("{e:#}")));
            Exit::Unusable
        }
    };
    Ok(ExitCode::from(exit as u8))
}

fn run(args: CallArgs) -> anyhow::Result<Exit> {
    let config = resolved(&args.config.config)?;
    let tokio = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    tokio.block_on(async {
        let store = open_store(&config).await?;
        let events = events(&args, &config, store.as_ref()).await?;
        let runtime = plugin_runtime(&config, &store)?;
        let wasm = args
            .wasm
            .clone()
            .unwrap_or_else(|| config.plugins.wasm_path(&args.plugin));
        let plugin = load_plugin(&runtime, &config, &args.plugin, &wasm)?;
        let snapshot = if args.no_effects {
            Some(MemoryKv::snapshot(store.as_ref(), [args.plugin.as_str()]).await?)
        } else {
            None
        };
        let mut worst = Exit::Answered;
        for event in events {
            let effects = match &snapshot {
                Some(kv) => Effects::Contained(Arc::new(kv.fork())),
                None => Effects::Live,
            };
            let trial = Trial::new(effects);
            let result = plugin.try_event(&event, trial.clone()).await;
            report(&event, &result, &trial)?;
            worst = worst.max(Exit::from(&result));
        }
        Ok(worst)
    })
}

/// The store the config names: where `--stored` events and KV are.
pub(super) async fn open_store(config: &Resolved) -> anyhow::Result<Arc<dyn Store>> {
    stores::open(
        &config.storage,
        config.database_url.as_ref(),
        &config.delivery,
        Role::Command,
        crate::providers::redecode,
    )
    .await
    .with_context(|| format!("opening the store {}", stores::location(&config.storage)))
}

/// A plugin runtime as the daemon's, its KV in `store`.
pub(super) fn plugin_runtime(config: &Resolved, store: &Arc<dyn Store>) -> anyhow::Result<Runtime> {
    let cache_dir =
        (config.plugins.cache_dir.clone()).unwrap_or_else(|| config.storage.path.join("cache"));
    let kv = store.clone() as Arc<dyn KvStore>;
    Runtime::new(Some(&cache_dir), Some(kv), &config.plugins).context("starting the plugin runtime")
}

/// The config at `path`, resolved, or every problem with it.
pub(super) fn resolved(path: &std::path::Path) -> anyhow::Result<Resolved> {
    Config::load(path)?.resolve().map_err(|problems| {
        ConfigError {
            file: path.to_owned(),
            problems,
        }
        .into()
    })
}

/// Loads `wasm` as plugin `name`, with what `[plugin.NAME]` grants.
pub(super) fn load_plugin(
    runtime: &Runtime,
    config: &Resolved,
    name: &str,
    wasm: &Path,
) -> anyhow::Result<Plugin> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let granted = config.plugin.get(name).cloned().unwrap_or_default();
    Ok(runtime.load(name, wasm, &bytes, &granted, &config.plugins)?)
}

/// The events the arguments name.
async fn events(
    args: &CallArgs,
    config: &Resolved,
    store: &dyn Store,
) -> anyhow::Result<Vec<PluginEvent>> {
    let input = &args.input;
    let events = if let (Some(provider), Some(path)) = (&input.provider, &input.payload) {
        decode(provider, &read(path)?, config, &args.plugin)?
    } else if let Some(path) = &input.event {
        vec![parse_event(&read(path)?).with_context(|| format!("{}", path.display()))?]
    } else if let Some(id) = input.stored {
        let Some((_, event)) = store.get(id).await? else {
            anyhow::bail!("--stored {id}: no such event in the store");
        };
        vec![event]
    } else {
        unreachable!("clap requires one of the inputs");
    };
    Ok(events.into_iter().map(PluginEvent::from).collect())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Editors and `echo` end files with a newline; it is not the payload's.
    Ok(bytes.trim_ascii_end().to_vec())
}

/// Decodes a payload as a route of `provider` would, with the source a
/// route of that provider running `plugin` would give it.
fn decode(
    provider: &str,
    payload: &[u8],
    config: &Resolved,
    plugin: &str,
) -> anyhow::Result<Vec<Event>> {
    let decode = crate::providers::decoder(provider)
        .with_context(|| format!("--provider: no provider `{provider}`"))?;
    let decoded = decode(payload).map_err(|rejection| {
        anyhow::anyhow!("--payload: a `{provider}` route would refuse it: {rejection}")
    })?;
    let route = config
        .routes
        .iter()
        .find(|r| r.provider.name() == provider && r.plugins.iter().any(|p| p == plugin))
        .map_or("call", |r| r.name.as_str());
    let received_at_ms = crate::clock::now_ms();
    Ok(decoded
        .into_iter()
        .enumerate()
        .map(|(i, d)| Event {
            source: Source {
                provider: provider.to_owned(),
                route: route.to_owned(),
                delivery_id: d.provider_id.unwrap_or_else(|| format!("call-{i}")),
                received_at_ms,
                attempt: 1,
            },
            kind: d.kind,
            payload: d.payload,
            raw_json: d.raw_json,
        })
        .collect())
}

/// An event as `dead-letters show --json` or the store print it: the
/// whole object (with its `event`) or the event alone.
fn parse_event(json: &[u8]) -> anyhow::Result<Event> {
    let value: serde_json::Value = serde_json::from_slice(json).context("not JSON")?;
    let event = match value.get("event") {
        Some(event) if value.get("record").is_some() => event.clone(),
        _ => value,
    };
    serde_json::from_value(event).context("not an event")
}

/// The reply to stdout; the rest to stderr.
fn report(
    event: &PluginEvent,
    result: &Result<Option<Reply>, CallError>,
    trial: &Trial,
) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "event {} (route {})",
        text::escape(event.delivery_id()),
        text::escape(event.route())
    )?;
    let (calls, dropped) = trial.calls();
    for call in &calls {
        writeln!(err, "  {}", describe(call))?;
    }
    if dropped > 0 {
        writeln!(err, "  ... {dropped} more host calls not shown")?;
    }
    match result {
        Ok(Some(reply)) => {
            writeln!(err, "reply {}", reply.status)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", reply.json)?;
            out.flush()?;
        }
        Ok(None) => writeln!(err, "no reply")?,
        Err(error) => writeln!(err, "{}", text::escape(&error.to_string()))?,
    }
    Ok(())
}

/// One line for a host call, control characters escaped.
pub(super) fn describe(call: &HostCall) -> String {
    let line = match call {
        HostCall::Log { level, message } => format!("log {level}: {message}"),
        HostCall::Fetch {
            method,
            url,
            status,
            error,
            millis,
        } => match (status, error) {
            (Some(status), _) => format!("fetch {method} {url} -> {status} ({millis} ms)"),
            (None, Some(error)) => format!("fetch {method} {url} -> {error} ({millis} ms)"),
            (None, None) => format!("fetch {method} {url} ({millis} ms)"),
        },
        HostCall::KvGet { key, found } => {
            format!(
                "kv get {key} ({})",
                if *found { "found" } else { "missing" }
            )
        }
        HostCall::KvSet { key, bytes } => format!("kv set {key} ({bytes} bytes)"),
        HostCall::KvDelete { key } => format!("kv delete {key}"),
        HostCall::KvList { prefix, keys } => format!("kv list {prefix:?} ({keys} keys)"),
        HostCall::Refused { capability, reason } => format!("{capability} refused: {reason}"),
    };
    text::escape(&line).into_owned()
}
