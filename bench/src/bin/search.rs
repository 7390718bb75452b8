//! `wirehook-search-bench`: the delivery log's listings on a store of a
//! million events. Fills an SQLite store (or reuses one it filled
//! before), then times the listings the console and the admin API make
//! (the newest page, a deep page, by status, by route, searches) and
//! prints each one's latency and SQLite's plan for it, as Markdown.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use wirehook::event::{Event, Source};
use wirehook::store::{DeliveryLog, Filter, Intake, Outcome, Queue, SqliteStore, Status, UnixMs};

#[derive(Parser)]
#[command(about = "Times the delivery log's listings on a store of many events")]
struct Args {
    /// Events in the store.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// The store's directory: filled unless it holds the events already.
    #[arg(long, default_value = "target/bench/search")]
    dir: PathBuf,
    /// Times each listing is run; the table gives the median and the
    /// slowest.
    #[arg(long, default_value_t = 21)]
    runs: usize,
}

/// Events stored per transaction while filling.
const BATCH: u64 = 10_000;

const ROUTES: u64 = 10;

const FIRST: [&str; 12] = [
    "Ann", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ida", "Jon", "Kim", "Lea",
];
const LAST: [&str; 8] = [
    "Okafor", "Silva", "Nguyen", "Haggerty", "Kowalski", "Moreau", "Tanaka", "Ortiz",
];
const WORDS: [&str; 10] = [
    "where is my order",
    "cancel please",
    "talk to a human",
    "track CU",
    "refund for order",
    "hello",
    "change my address",
    "is the store open",
    "yes",
    "no thanks",
];

/// Event `n`: a flow call from a contact with a name, a phone number and
/// a message, on one of [`ROUTES`] routes.
fn event(n: u64) -> Event {
    let name = format!(
        "{} {}",
        FIRST[(n % 12) as usize],
        LAST[(n / 12 % 8) as usize]
    );
    let raw_json = serde_json::json!({
        "contact": {
            "uuid": format!("c-{n:08}"),
            "name": name,
            "urn": format!("tel:+1206555{:04}", n % 10_000),
        },
        "flow": {"uuid": "f-1", "name": "orders"},
        "input": {"text": format!("{} {:06}", WORDS[(n % 10) as usize], n % 100_000)},
    })
    .to_string();
    let decode = wirehook::providers::decoder("goflow").expect("goflow decodes");
    let decoded = decode(raw_json.as_bytes()).expect("a flow call").remove(0);
    Event {
        source: Source {
            provider: "goflow".into(),
            route: format!("r{}", n % ROUTES),
            delivery_id: format!("run-{n:08}"),
            received_at_ms: 1_700_000_000_000 + n,
            attempt: 1,
        },
        kind: decoded.kind,
        payload: decoded.payload,
        raw_json: decoded.raw_json,
    }
}

/// What becomes of event `n`: most are delivered, one in a hundred is a
/// dead letter, three wait for a retry.
fn outcome(n: u64) -> Outcome {
    match n % 100 {
        0 => Outcome::Dead {
            error: "plugin `crm`: rejected".into(),
        },
        1..=3 => Outcome::Retry {
            error: "plugin `crm`: unavailable".into(),
            at: UnixMs(u64::MAX / 2),
        },
        _ => Outcome::Delivered,
    }
}

async fn fill(store: &SqliteStore, from: u64, to: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut n = from;
    while n < to {
        let end = (n + BATCH).min(to);
        let now = UnixMs(1_700_000_000_000 + end);
        store
            .enqueue(Intake::Queue, (n..end).map(event).collect(), now, now)
            .await?;
        let claimed = store.claim(now, BATCH as usize, None).await?;
        let outcomes = claimed
            .iter()
            .map(|c| {
                let number: u64 = c.event.source.delivery_id[4..].parse().unwrap_or(0);
                (c.id, outcome(number))
            })
            .collect();
        store.finish(outcomes, now).await?;
        n = end;
        if n.is_multiple_of(100_000) {
            eprintln!("filled {n} events in {:.0?}", started.elapsed());
        }
    }
    Ok(())
}

/// The newest page of `filter`, `limit` 50.
fn page(filter: Filter) -> Filter {
    Filter {
        limit: 50,
        ..filter
    }
}

fn listings(events: u64) -> Vec<(&'static str, Filter)> {
    let search = |q: &str| {
        page(Filter {
            q: Some(q.into()),
            ..Filter::default()
        })
    };
    vec![
        ("newest page", page(Filter::default())),
        (
            "a page half-way down (cursor)",
            page(Filter {
                before: Some((events / 2) as i64),
                ..Filter::default()
            }),
        ),
        (
            "status = dead",
            page(Filter {
                status: Some(Status::Dead),
                ..Filter::default()
            }),
        ),
        (
            "status = queued",
            page(Filter {
                status: Some(Status::Queued),
                ..Filter::default()
            }),
        ),
        (
            "route = r3",
            page(Filter {
                route: Some("r3".into()),
                ..Filter::default()
            }),
        ),
        (
            "route = r3, next page",
            page(Filter {
                route: Some("r3".into()),
                before: Some((events / 2) as i64),
                ..Filter::default()
            }),
        ),
        (
            "route = r3 and status = dead",
            page(Filter {
                route: Some("r3".into()),
                status: Some(Status::Dead),
                ..Filter::default()
            }),
        ),
        ("q = a delivery id (1 match)", search("run-00777777")),
        ("q = a contact's uuid (1 match)", search("c-00123457")),
        ("q = a phone number (1 in 10,000)", search("+12065551234")),
        ("q = a name (1 in 96)", search("Ida Tanaka")),
        ("q = message text (1 in 10)", search("talk to a human")),
        ("q = no match", search("nonesuch")),
        ("q = 2 characters (a word's start)", search("zq")),
        ("q = punctuation alone (scan)", search("+-")),
    ]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let store = SqliteStore::open(&args.dir, wirehook::providers::redecode)?;
    let newest = store
        .list(Filter {
            limit: 1,
            ..Filter::default()
        })
        .await?;
    let stored = newest.first().map_or(0, |r| r.id as u64);
    if stored < args.events {
        eprintln!("filling {} to {} events", args.dir.display(), args.events);
        fill(&store, stored, args.events).await?;
    }
    let bytes: u64 = SqliteStore::files(&args.dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{} events, store {:.0} MiB; {} runs each, milliseconds\n",
        args.events,
        bytes as f64 / (1024.0 * 1024.0),
        args.runs
    );
    println!("| listing | rows | median | slowest | plan |");
    println!("|---|---|---|---|---|");
    for (name, filter) in listings(args.events) {
        let mut times = Vec::with_capacity(args.runs);
        let mut rows = 0;
        for _ in 0..args.runs {
            let started = Instant::now();
            rows = store.list(filter.clone()).await?.len();
            times.push(started.elapsed());
        }
        times.sort();
        let plan = store.query_plan(filter).await?.join("; ");
        println!(
            "| {name} | {rows} | {} | {} | `{plan}` |",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
        );
    }
    Ok(())
}
