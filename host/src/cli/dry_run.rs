//! `wirehook replay --dry-run --wasm CANDIDATE.wasm`: what a new build of
//! a plugin would have answered to the traffic in the store, before it
//! ships. Each stored event of the routes that run the plugin goes
//! through the route's chain with the candidate in the plugin's place,
//! contained (fetch refused and listed, KV read from a snapshot taken at
//! the start and written in memory, a fresh copy per event), and its
//! answer is compared with the reply recorded for a `respond` route, or
//! with the current chain's answer, run the same way, for a `queue`
//! route. Events run in parallel, a few per core.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;

use super::call::{describe, load_plugin, open_store, plugin_runtime};
use crate::config::Mode;
use crate::event::Event;
use crate::runtime::{Effects, HostCall, MemoryKv, Plugin, PluginEvent, Trial};
use crate::store::{Filter, Record, Status, Store};
use crate::text;

mod diff;

/// Differences shown at most, first found first.
const MAX_SHOWN: usize = 10;

/// Events in flight per core: plugins mostly compute, but an instance
/// starting up waits on the pool.
const IN_FLIGHT_PER_CORE: usize = 4;

#[derive(Debug, clap::Args)]
pub struct DryRunArgs {
    /// The candidate build to try (with `--dry-run`).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    wasm: Option<PathBuf>,
    /// The plugin the candidate replaces [default: the file's stem].
    #[arg(long, requires = "dry_run")]
    plugin: Option<String>,
    /// Only events of this route.
    #[arg(long, requires = "dry_run")]
    route: Option<String>,
    /// Only events received this long ago at most (`90s`, `30m`, `24h`, `7d`).
    #[arg(long, requires = "dry_run", value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// At most this many events, newest first (0: all).
    #[arg(long, requires = "dry_run", default_value_t = 1000)]
    limit: usize,
    /// The summary and the differences as one JSON object.
    #[arg(long = "json", requires = "dry_run")]
    json: bool,
}

/// One route that runs the plugin: its chain as it is and with the
/// candidate in the plugin's place.
struct Chains {
    mode: Mode,
    current: Vec<Arc<Plugin>>,
    candidate: Vec<Arc<Plugin>>,
}

/// What a chain did with an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
enum Answer {
    Reply { json: Value },
    None,
    Failed { error: String },
}

impl Answer {
    fn reply(json: &str) -> Self {
        // A reply that is not JSON is compared as the text it is.
        let json = serde_json::from_str(json).unwrap_or_else(|_| Value::String(json.to_owned()));
        Self::Reply { json }
    }

    /// What a respond route's log says it answered.
    fn recorded(record: &Record) -> Option<Self> {
        match record.status {
            Status::Responded => Some(record.reply.as_deref().map_or(Self::None, Self::reply)),
            Status::Failed => Some(Self::Failed {
                error: record.last_error.clone().unwrap_or_default(),
            }),
            _ => None,
        }
    }

    fn failed(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Same,
    Different,
    CandidateFailed,
    CurrentFailed,
}

impl Verdict {
    fn of(expected: &Answer, candidate: &Answer) -> Self {
        match (expected.failed(), candidate.failed()) {
            // Failures are compared by kind, not wording.
            (true, true) => Self::Same,
            (false, true) => Self::CandidateFailed,
            (true, false) => Self::CurrentFailed,
            (false, false) if expected == candidate => Self::Same,
            (false, false) => Self::Different,
        }
    }
}

/// One event's comparison.
#[derive(Debug, Serialize)]
struct Compared {
    id: i64,
    route: String,
    delivery_id: String,
    verdict: Verdict,
    /// `recorded` (respond routes) or `current` (queue routes).
    against: &'static str,
    expected: Answer,
    candidate: Answer,
    /// Where the replies' JSON differ.
    diff: Vec<diff::Change>,
    /// The candidate's host calls.
    calls: Vec<HostCall>,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    events: usize,
    same: usize,
    different: usize,
    candidate_failed: usize,
    current_failed: usize,
    /// Fetches the candidate asked for, not made.
    fetches_not_made: usize,
    /// KV writes the candidate made, kept in memory.
    kv_writes_kept: usize,
    seconds: f64,
    events_per_sec: f64,
}

pub fn run(config_path: &Path, args: DryRunArgs) -> anyhow::Result<ExitCode> {
    let wasm = args
        .wasm
        .clone()
        .context("--dry-run needs --wasm CANDIDATE.wasm")?;
    let name = match &args.plugin {
        Some(name) => name.clone(),
        None => wasm
            .file_stem()
            .and_then(|s| s.to_str())
            .context("--wasm: name the plugin it replaces with --plugin")?
            .to_owned(),
    };
    let config = super::call::resolved(config_path)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async {
        let store = open_store(&config).await?;
        let runtime = plugin_runtime(&config, &store)?;
        let routes: Vec<_> = config
            .routes
            .iter()
            .filter(|r| r.plugins.contains(&name))
            .filter(|r| args.route.as_ref().is_none_or(|only| *only == r.name))
            .collect();
        if routes.is_empty() {
            anyhow::bail!(
                "no route{} runs plugin `{name}`",
                args.route
                    .as_ref()
                    .map_or(String::new(), |r| format!(" named `{r}`"))
            );
        }
        let candidate = Arc::new(load_plugin(&runtime, &config, &name, &wasm)?);
        let mut loaded = std::collections::BTreeMap::new();
        let mut chains = std::collections::BTreeMap::new();
        for route in &routes {
            let mut current = Vec::new();
            let mut trial = Vec::new();
            for plugin in &route.plugins {
                if !loaded.contains_key(plugin) {
                    let path = config.plugins.wasm_path(plugin);
                    let built = load_plugin(&runtime, &config, plugin, &path)?;
                    loaded.insert(plugin.clone(), Arc::new(built));
                }
                current.push(loaded[plugin].clone());
                trial.push(if *plugin == name {
                    candidate.clone()
                } else {
                    loaded[plugin].clone()
                });
            }
            let chains_of = Chains {
                mode: route.mode,
                current,
                candidate: trial,
            };
            chains.insert(route.name.clone(), Arc::new(chains_of));
        }
        let namespaces: BTreeSet<&str> = loaded.keys().map(String::as_str).collect();
        let snapshot = Arc::new(MemoryKv::snapshot(store.as_ref(), namespaces).await?);
        let events = stored_events(store.as_ref(), &chains, &args).await?;

        let started = Instant::now();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(cores * IN_FLIGHT_PER_CORE));
        let mut tasks = tokio::task::JoinSet::new();
        for (n, (record, event)) in events.into_iter().enumerate() {
            let chains = chains[&record.route].clone();
            let (snapshot, in_flight) = (snapshot.clone(), in_flight.clone());
            tasks.spawn(async move {
                let _slot = in_flight.acquire_owned().await;
                (n, compare(record, event, &chains, &snapshot).await)
            });
        }
        let mut compared = Vec::new();
        while let Some(done) = tasks.join_next().await {
            compared.push(done.context("a comparison panicked")?);
        }
        compared.sort_by_key(|(n, _)| *n);
        let compared: Vec<Compared> = compared.into_iter().filter_map(|(_, c)| c).collect();
        let summary = summarise(&compared, started.elapsed());
        print(&name, &wasm, &summary, &compared, args.json)?;
        let differ = summary.different + summary.candidate_failed + summary.current_failed;
        Ok(if differ == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The stored events of the routes in `chains`, newest first, as
/// `--since` and `--limit` say.
async fn stored_events(
    store: &dyn Store,
    chains: &std::collections::BTreeMap<String, Arc<Chains>>,
    args: &DryRunArgs,
) -> anyhow::Result<Vec<(Record, Event)>> {
    let since_ms = args.since.map(|since| {
        crate::clock::now_ms().saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    });
    let mut records = Vec::new();
    for route in chains.keys() {
        let filter = Filter {
            status: None,
            route: Some(route.clone()),
            limit: args.limit,
            ..Filter::default()
        };
        records.extend(store.list(filter).await?);
    }
    records.retain(|r| since_ms.is_none_or(|since| r.received_at_ms >= since));
    records.sort_by_key(|r| std::cmp::Reverse((r.received_at_ms, r.id)));
    if args.limit > 0 {
        records.truncate(args.limit);
    }
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        // Pruned since it was listed: nothing to replay.
        if let Some((record, event)) = store.get(record.id).await? {
            events.push((record, event));
        }
    }
    Ok(events)
}

/// Runs `chain` on `event` in a trial of its own over a copy of the KV
/// snapshot: what it answered, and the host calls it made.
async fn run_chain(
    chain: &[Arc<Plugin>],
    event: &PluginEvent,
    snapshot: &MemoryKv,
) -> (Answer, Vec<HostCall>) {
    let trial = Trial::new(Effects::Contained(Arc::new(snapshot.fork())));
    let mut answer = Answer::None;
    for plugin in chain {
        match plugin.try_event(event, trial.clone()).await {
            Ok(Some(reply)) => answer = Answer::reply(&reply.json),
            Ok(None) => {}
            Err(error) => {
                answer = Answer::Failed {
                    error: format!("plugin `{}`: {error}", plugin.name()),
                };
                break;
            }
        }
    }
    (answer, trial.calls().0)
}

/// One event through the candidate, against what it is compared with;
/// `None` for an event of a respond route with nothing recorded yet.
async fn compare(
    record: Record,
    event: Event,
    chains: &Chains,
    snapshot: &MemoryKv,
) -> Option<Compared> {
    let event = PluginEvent::from(event);
    let (against, expected) = match chains.mode {
        Mode::Respond => ("recorded", Answer::recorded(&record)?),
        Mode::Queue => (
            "current",
            run_chain(&chains.current, &event, snapshot).await.0,
        ),
    };
    let (candidate, calls) = run_chain(&chains.candidate, &event, snapshot).await;
    let verdict = Verdict::of(&expected, &candidate);
    let diff = match (&expected, &candidate) {
        (Answer::Reply { json: a }, Answer::Reply { json: b }) => diff::diff(a, b),
        _ => Vec::new(),
    };
    Some(Compared {
        id: record.id,
        route: record.route,
        delivery_id: record.delivery_id,
        verdict,
        against,
        expected,
        candidate,
        diff,
        calls,
    })
}

fn summarise(compared: &[Compared], took: Duration) -> Summary {
    let mut summary = Summary {
        events: compared.len(),
        seconds: took.as_secs_f64(),
        events_per_sec: compared.len() as f64 / took.as_secs_f64().max(1e-9),
        ..Summary::default()
    };
    for c in compared {
        match c.verdict {
            Verdict::Same => summary.same += 1,
            Verdict::Different => summary.different += 1,
            Verdict::CandidateFailed => summary.candidate_failed += 1,
            Verdict::CurrentFailed => summary.current_failed += 1,
        }
        for call in &c.calls {
            match call {
                HostCall::Fetch { status: None, .. } => summary.fetches_not_made += 1,
                HostCall::KvSet { .. } | HostCall::KvDelete { .. } => summary.kv_writes_kept += 1,
                _ => {}
            }
        }
    }
    summary
}

fn print(
    name: &str,
    wasm: &Path,
    summary: &Summary,
    compared: &[Compared],
    json: bool,
) -> anyhow::Result<()> {
    let shown: Vec<&Compared> = compared
        .iter()
        .filter(|c| c.verdict != Verdict::Same)
        .take(MAX_SHOWN)
        .collect();
    if json {
        let out = serde_json::json!({
            "plugin": name,
            "candidate": wasm.display().to_string(),
            "summary": summary,
            "differences": shown,
        });
        println!("{}", text::escape_json(&out.to_string()));
        return Ok(());
    }
    let line = format!(
        "dry run of {} as plugin `{name}`: {} events in {:.2} s ({:.0} events/s)",
        wasm.display(),
        summary.events,
        summary.seconds,
        summary.events_per_sec
    );
    println!("{}", text::escape(&line));
    println!(
        "same {}, different {}, candidate failed {}, current failed {}",
        summary.same, summary.different, summary.candidate_failed, summary.current_failed
    );
    println!(
        "effects held back: {} fetches not made, {} KV writes kept in memory",
        summary.fetches_not_made, summary.kv_writes_kept
    );
    for c in shown {
        let verdict = serde_json::to_value(c.verdict)?;
        let head = format!(
            "event {} (route {}, delivery {}): {}",
            c.id,
            c.route,
            c.delivery_id,
            verdict.as_str().unwrap_or_default()
        );
        println!("{}", text::escape(&head));
        println!("  {}: {}", c.against, show(&c.expected));
        println!("  candidate: {}", show(&c.candidate));
        if !c.diff.is_empty() {
            let diff = serde_json::to_string(&c.diff)?;
            println!("  diff: {}", text::escape_json(&diff));
        }
        for call in &c.calls {
            println!("  {}", describe(call));
        }
    }
    Ok(())
}

/// An answer on one line, control characters escaped.
fn show(answer: &Answer) -> String {
    match answer {
        Answer::Reply { json } => text::escape_json(&json.to_string()).into_owned(),
        Answer::None => "no reply".to_owned(),
        Answer::Failed { error } => text::escape(&format!("failed: {error}")).into_owned(),
    }
}
