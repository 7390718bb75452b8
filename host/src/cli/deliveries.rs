//! `wirehook events`, `replay` and `dead-letters`: the delivery log, read
//! and changed from the store file, also while the daemon runs. What the
//! store holds came from requests and plugins: tables show it with control
//! characters escaped, JSON with every control character as an escape.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::ConfigArg;
use crate::admin::ops;
use crate::config::{Config, ConfigError};
use crate::store::{self as stores, Filter, Record, Role, Status, Store};
use crate::text;

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only events with this status.
    #[arg(long)]
    status: Option<Status>,
    #[command(flatten)]
    list: ListArgs,
}

/// Which records a listing shows, and how.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only events of this route.
    #[arg(long)]
    route: Option<String>,
    /// At most this many, newest first (0: all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    /// Prints the records with `status` (any when `None`).
    fn print(self, config: &ConfigArg, status: Option<Status>) -> anyhow::Result<ExitCode> {
        let Self { route, limit, json } = self;
        let records = with_store(config, async |store| {
            Ok(store
                .list(Filter {
                    status,
                    route,
                    limit,
                    ..Filter::default()
                })
                .await?)
        })?;
        print_records(&records, json);
        Ok(ExitCode::SUCCESS)
    }
}

/// Dead letters by id, or every one.
#[derive(Debug, Args)]
pub struct Selection {
    /// Ids, as `wirehook dead-letters list` shows them.
    #[arg(required_unless_present = "all")]
    ids: Vec<i64>,
    /// Every dead letter.
    #[arg(long, conflicts_with = "ids")]
    all: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Event ids, as `wirehook events` shows them.
    #[arg(required_unless_present = "dry_run", conflicts_with = "dry_run")]
    ids: Vec<i64>,
    /// Change nothing: run the stored events of the routes that use a
    /// plugin through a candidate build (`--wasm`) with no effects, and
    /// compare its replies with the recorded ones (respond routes) or the
    /// current build's (queue routes). Exits 1 when any differ.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    candidate: super::dry_run::DryRunArgs,
}

#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one dead letter with its event.
    Show {
        #[command(flatten)]
        config: ConfigArg,
        id: i64,
    },
    /// Re-queue dead letters for an immediate attempt.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        selection: Selection,
    },
    /// Delete dead letters.
    Purge {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        selection: Selection,
    },
}

/// Opens the store the config points at and runs `f` on it.
fn with_store<T>(
    config: &ConfigArg,
    f: impl AsyncFnOnce(&dyn Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let file = &config.config;
    let config = Config::load(file)?;
    // Only `[storage]` is read: a command needs none of the routes' secrets.
    let url = config.storage.resolve().map_err(|problems| ConfigError {
        file: file.clone(),
        problems,
    })?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store = stores::open(
                &config.storage,
                url.as_ref(),
                &config.delivery,
                Role::Command,
                crate::providers::redecode,
            )
            .await
            .with_context(|| format!("opening the store {}", stores::location(&config.storage)))?;
            f(&*store).await
        })
}

pub fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    args.list.print(&args.config, args.status)
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        return super::dry_run::run(&args.config.config, args.candidate);
    }
    let replayed = with_store(&args.config, async |store| {
        Ok(ops::replay(store, args.ids).await?)
    })?;
    report_replayed(&replayed)
}

pub fn dead_letters(command: DeadLetters) -> anyhow::Result<ExitCode> {
    match command {
        DeadLetters::List { config, list } => list.print(&config, Some(Status::Dead)),
        DeadLetters::Show { config, id } => {
            let found = with_store(&config, async |store| Ok(store.get(id).await?))?;
            let Some((record, event)) = found.filter(|(r, _)| r.status == Status::Dead) else {
                eprintln!("no dead letter {id}");
                return Ok(ExitCode::FAILURE);
            };
            let shown = serde_json::json!({ "record": record, "event": event });
            let shown = serde_json::to_string_pretty(&shown)?;
            println!("{}", text::escape_json(&shown));
            Ok(ExitCode::SUCCESS)
        }
        DeadLetters::Replay { config, selection } => {
            let replayed = with_store(&config, async |store| {
                Ok(ops::replay_dead(store, selection.into()).await?)
            })?;
            report_replayed(&replayed)
        }
        DeadLetters::Purge { config, selection } => {
            let purged = with_store(&config, async |store| {
                Ok(ops::purge_dead(store, selection.into()).await?)
            })?;
            println!("purged {purged} dead letters");
            Ok(ExitCode::SUCCESS)
        }
    }
}

impl From<Selection> for ops::Selection {
    fn from(selection: Selection) -> Self {
        if selection.all {
            Self::All
        } else {
            Self::Ids(selection.ids)
        }
    }
}

fn report_replayed(replayed: &ops::Replayed) -> anyhow::Result<ExitCode> {
    for id in &replayed.replayed {
        println!("re-queued {id}");
    }
    let missing = &replayed.missing;
    for id in missing {
        eprintln!("no event {id} to replay (unknown, or being delivered right now)");
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_records(records: &[Record], json: bool) {
    if json {
        for record in records {
            let line = serde_json::to_string(record).expect("records serialize");
            println!("{}", text::escape_json(&line));
        }
        return;
    }
    println!(
        "{:>8}  {:<10}  {:<16}  {:<12}  {:<20}  {:>8}  {:<24}  {:<24}  {:<34}  last error",
        "id",
        "status",
        "route",
        "provider",
        "kind",
        "attempts",
        "received",
        "updated",
        "delivery id"
    );
    for r in records {
        println!(
            "{:>8}  {:<10}  {:<16}  {:<12}  {:<20}  {:>8}  {:<24}  {:<24}  {:<34}  {}",
            r.id,
            r.status.as_str(),
            text::escape(&r.route),
            text::escape(&r.provider),
            text::escape(&r.kind),
            r.attempts,
            time(r.received_at_ms),
            time(r.updated_at_ms),
            text::escape(&r.delivery_id),
            text::escape(r.last_error.as_deref().unwrap_or(""))
        );
    }
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
