//! `wirehook-bench`: runs every target of the side-by-side table one after
//! another on 127.0.0.1 with the same load, round after round (`--rounds`),
//! with row 7 under attack (`attacked`), each measured by the load
//! generator (`measure`), the Express peer installed first (`express`);
//! measures memory and start-up (`footprint`), reads the plugin-call
//! micro-benchmark if it ran, and prints the report.
//! `bench/run` builds everything and calls this.

#![forbid(unsafe_code)]

mod attacked;
mod collector;
mod express;
mod footprint;
mod measure;
mod postgres;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::{LIMIT, Machine, Measured, Micro, RESPOND, Report, Row, round_ratios};
use wirehook_bench::targets::{self, Site};

#[derive(Debug, Parser)]
#[command(
    name = "wirehook-bench",
    about = "wirehook side by side with its limit and its peer"
)]
struct Args {
    /// One round of a second per row, to show the harness works (no
    /// figure means much).
    #[arg(long)]
    smoke: bool,
    /// Open connections of the load generator, the same for every row.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before measuring, per row.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured, per row and round.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Times the whole table is measured; each line shows its median
    /// round. Single runs of a row move by ±15 % on a shared machine.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The repository root (plugins/dist is read from it).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Where the JSON report goes; default <target>/bench/report.json.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Measure only these rows of the throughput table (e.g. `1,2,7`),
    /// and no footprint unless `footprint` is one of them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Where the binaries and the repository are.
struct Paths {
    root: PathBuf,
    /// The directory of this binary: wirehook and the load generator too.
    bin: PathBuf,
    /// `target/`, for the criterion results and the Express install.
    target: PathBuf,
}

impl Paths {
    fn exe(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// An example plugin, or the table's reason for its absence.
    fn plugin(&self, name: &str) -> Result<PathBuf, String> {
        let path = self.root.join("plugins/dist").join(format!("{name}.wasm"));
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("not built (plugins/dist/{name}.wasm)"))
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.warmup = 0.2;
        args.duration = 1.0;
        args.rounds = 1;
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let bin = std::env::current_exe()?
        .parent()
        .context("the runner's directory")?
        .to_owned();
    let root = match &args.root {
        Some(root) => root.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the repository root")?
            .to_owned(),
    };
    let target = bin
        .parent()
        .map_or_else(|| root.join("target"), Path::to_owned);
    let paths = Paths { root, bin, target };
    if paths.plugin("order-status").is_err() {
        bail!("plugins/dist/order-status.wasm is missing: run plugins/build first");
    }
    let scratch = tempfile::tempdir()?;
    let bench = Bench {
        args: &args,
        paths: &paths,
        scratch: scratch.path(),
    };
    let machine = Machine::describe();
    let rows = bench.rows();
    let footprints = if args.only.is_empty() || args.only.iter().any(|id| id == "footprint") {
        bench.footprints()?
    } else {
        Vec::new()
    };
    // A smoke run does not run the micro-benchmark: old medians would lie.
    let micro = if args.smoke {
        Vec::new()
    } else {
        Micro::read_criterion(&paths.target.join("criterion"))
    };
    let report = Report {
        machine,
        connections: args.connections,
        warmup_s: args.warmup,
        duration_s: args.duration,
        rounds: args.rounds,
        rows,
        footprints,
        micro,
    };
    println!("\n{}", report.markdown());
    let json = args
        .json
        .clone()
        .unwrap_or_else(|| paths.target.join("bench/report.json"));
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    println!("JSON: {}", json.display());
    // Every target present must have started and answered; a broken
    // target is a broken harness, smoke or not. Absent ones only say so.
    let broken: Vec<_> = report
        .rows
        .iter()
        .filter(|r| match &r.result {
            Ok(m) => m.load.errors > 0 || m.load.requests == 0,
            Err(why) => why.starts_with(FAILED),
        })
        .map(|r| format!("{} {}", r.id, r.name))
        .chain(
            report
                .footprints
                .iter()
                .filter(|f| f.result.as_ref().is_err_and(|why| why.starts_with(FAILED)))
                .map(|f| f.name.clone()),
        )
        .collect();
    if !broken.is_empty() {
        bail!("failed or answered with errors: {broken:?}");
    }
    Ok(())
}

/// How a row that could not be measured starts.
const FAILED: &str = "failed";

/// A row's error, short enough for a table cell.
fn failed(error: &anyhow::Error) -> String {
    let text = format!("{error:#}").replace('\n', " ").replace('|', "/");
    let short: String = text.chars().take(240).collect();
    format!("{FAILED}: {short}")
}

struct Bench<'a> {
    args: &'a Args,
    paths: &'a Paths,
    scratch: &'a Path,
}

/// The provider whose signed requests a wirehook row's load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Goflow,
    Truora,
}

impl Provider {
    fn as_str(self) -> &'static str {
        match self {
            Self::Goflow => "goflow",
            Self::Truora => "truora",
        }
    }

    /// The environment variable the route's secret is read from.
    fn secret_var(self) -> &'static str {
        match self {
            Self::Goflow => "BENCH_GOFLOW_TOKEN",
            Self::Truora => "BENCH_TRUORA_SECRET",
        }
    }
}

/// A route's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Respond,
    Queue,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Respond => "respond",
            Self::Queue => "queue",
        }
    }
}

/// A plugin's `isolation`: instances reused from its pool, or a fresh
/// one per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    Pooled,
    Event,
}

/// A wirehook row: one route to one plugin.
#[derive(Debug, Clone, Copy)]
struct Setup {
    provider: Provider,
    mode: Mode,
    plugin: &'static str,
    isolation: Isolation,
    /// Every span exported to a loopback collector (`[telemetry]`).
    traced: bool,
}

/// Row 2's route: the respond row the attacked row compares with.
const RESPOND_GOFLOW: Setup = Setup {
    provider: Provider::Goflow,
    mode: Mode::Respond,
    plugin: "order-status",
    isolation: Isolation::Pooled,
    traced: false,
};

/// What a line of the table measures.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Limit,
    Wirehook(Setup),
    /// Row 2's route while `wirehook-attack` attacks.
    UnderAttack,
    /// The Express peer with this many workers.
    Express {
        workers: usize,
    },
    /// Row 4's route on PostgreSQL, with this many daemons.
    Postgres {
        instances: usize,
    },
}

/// One line of the throughput table as bench/README.md lists it.
#[derive(Debug)]
struct Spec {
    id: &'static str,
    name: &'static str,
    kind: Kind,
}

/// The throughput table, in the order it is measured and printed: the
/// limit first.
const TABLE: &[Spec] = &[
    Spec {
        id: LIMIT,
        name: "the limit: bare axum, reads the body, 200",
        kind: Kind::Limit,
    },
    Spec {
        id: RESPOND,
        name: "wirehook respond: goflow token + Rust order-status",
        kind: Kind::Wirehook(RESPOND_GOFLOW),
    },
    Spec {
        id: "9",
        name: "wirehook respond: row 2 traced, every span exported over OTLP",
        kind: Kind::Wirehook(Setup {
            traced: true,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "3",
        name: "wirehook respond: Truora JWT + Rust order-status",
        kind: Kind::Wirehook(Setup {
            provider: Provider::Truora,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "4",
        name: "wirehook queue: goflow, acked after group commit",
        kind: Kind::Wirehook(Setup {
            mode: Mode::Queue,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "8",
        name: "wirehook queue on PostgreSQL: goflow, one instance",
        kind: Kind::Postgres { instances: 1 },
    },
    Spec {
        id: "8",
        name: "wirehook queue on PostgreSQL: goflow, two instances",
        kind: Kind::Postgres { instances: 2 },
    },
    Spec {
        id: "5",
        name: "wirehook respond: Rust order-status, isolation = \"event\"",
        kind: Kind::Wirehook(Setup {
            isolation: Isolation::Event,
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "5",
        name: "wirehook respond: Python order-status-py",
        kind: Kind::Wirehook(Setup {
            plugin: "order-status-py",
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "5",
        name: "wirehook respond: JavaScript order-status-js",
        kind: Kind::Wirehook(Setup {
            plugin: "order-status-js",
            ..RESPOND_GOFLOW
        }),
    },
    Spec {
        id: "6",
        name: "Express peer, one process",
        kind: Kind::Express { workers: 1 },
    },
    Spec {
        id: "6",
        name: "Express peer, WORKERS=2 cluster",
        kind: Kind::Express { workers: 2 },
    },
    Spec {
        id: "7",
        name: "wirehook respond: goflow token + Rust order-status, under attack",
        kind: Kind::UnderAttack,
    },
];

/// What a line of the table starts and puts the load on.
enum Target {
    Limit,
    Wirehook {
        setup: Setup,
        wasm: PathBuf,
    },
    /// Row 2's route while `wirehook-attack` attacks.
    UnderAttack {
        wasm: PathBuf,
    },
    Express {
        dir: PathBuf,
        workers: usize,
    },
    /// Row 4's route on PostgreSQL, with this many daemons.
    Postgres {
        wasm: PathBuf,
        instances: usize,
    },
}

/// A line of the table: its target, or why it has none ("not built",
/// "not available").
struct Line {
    id: &'static str,
    name: &'static str,
    target: Result<Target, String>,
}

impl Bench<'_> {
    /// Every line of [`TABLE`] with what it needs found.
    fn lines(&self) -> Vec<Line> {
        let express = self.express_dir();
        TABLE
            .iter()
            .map(|spec| {
                let target = match spec.kind {
                    Kind::Limit => Ok(Target::Limit),
                    Kind::Wirehook(setup) => self
                        .paths
                        .plugin(setup.plugin)
                        .map(|wasm| Target::Wirehook { setup, wasm }),
                    Kind::UnderAttack => self
                        .paths
                        .plugin(RESPOND_GOFLOW.plugin)
                        .map(|wasm| Target::UnderAttack { wasm }),
                    Kind::Express { workers } => {
                        express.clone().map(|dir| Target::Express { dir, workers })
                    }
                    Kind::Postgres { instances } => postgres::available()
                        .and_then(|()| self.paths.plugin(RESPOND_GOFLOW.plugin))
                        .map(|wasm| Target::Postgres { wasm, instances }),
                };
                Line {
                    id: spec.id,
                    name: spec.name,
                    target,
                }
            })
            .collect()
    }

    /// Measures every line once a round, in table order, so that each
    /// ratio divides by a limit measured minutes, not a whole run, away.
    fn rows(&self) -> Vec<Row> {
        let only = &self.args.only;
        let mut lines = self.lines();
        lines.retain(|line| only.is_empty() || only.iter().any(|id| id == line.id));
        let rounds = self.args.rounds;
        let mut measured: Vec<Vec<Result<Measured, String>>> =
            lines.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (line, results) in lines.iter().zip(&mut measured) {
                let Ok(target) = &line.target else {
                    continue;
                };
                let result = self.run(target, line.id, round).map_err(|e| failed(&e));
                match &result {
                    Ok(m) => eprintln!(
                        "round {round}/{rounds} row {} {}: {:.0} req/s, p50 {} µs, p99 {} µs, {} errors",
                        line.id, line.name, m.load.rps, m.load.p50_us, m.load.p99_us, m.load.errors
                    ),
                    Err(why) => eprintln!(
                        "round {round}/{rounds} row {} {}: {why}",
                        line.id, line.name
                    ),
                }
                results.push(result);
            }
        }
        // Each round's throughput of the first line with `id`.
        let throughputs = |id: &str| -> Vec<Option<f64>> {
            lines
                .iter()
                .zip(&measured)
                .find(|(line, _)| line.id == id)
                .map(|(_, rounds)| {
                    rounds
                        .iter()
                        .map(|r| r.as_ref().ok().map(|m| m.load.rps))
                        .collect()
                })
                .unwrap_or_default()
        };
        let limits = throughputs(LIMIT);
        let unattacked = throughputs(RESPOND);
        lines
            .into_iter()
            .zip(measured)
            .map(|(line, rounds)| match line.target {
                Err(why) => Row {
                    id: line.id.to_owned(),
                    name: line.name.to_owned(),
                    result: Err(why),
                    ratios: Vec::new(),
                    versus_unattacked: Vec::new(),
                },
                Ok(target) => {
                    let attacked: Vec<Option<f64>> = rounds
                        .iter()
                        .map(|r| r.as_ref().ok().map(|m| m.load.rps))
                        .collect();
                    let mut row = Row::from_rounds(line.id, line.name, rounds, &limits);
                    if matches!(target, Target::UnderAttack { .. }) {
                        row.versus_unattacked = round_ratios(&attacked, &unattacked);
                    }
                    row
                }
            })
            .collect()
    }

    /// Starts `target`, measures it, and stops it.
    fn run(&self, target: &Target, id: &str, round: usize) -> anyhow::Result<Measured> {
        match target {
            Target::Limit => {
                let limit = targets::limit(&self.paths.exe("wirehook-limit"))?;
                self.measure(&limit, "limit", "goflow", Expect::Ok, &["/hooks/orders"])
            }
            Target::Wirehook { setup, wasm } => self.wirehook_row(id, round, setup, wasm),
            Target::UnderAttack { wasm } => self.attacked_row(id, round, wasm),
            Target::Postgres { wasm, instances } => self.postgres_row(id, round, *instances, wasm),
            Target::Express { dir, workers } => {
                let running = targets::express(dir, *workers)?;
                self.measure(
                    &running,
                    &format!("express-{workers}"),
                    "goflow",
                    Expect::OrderStatus,
                    &["/hooks/orders"],
                )
            }
        }
    }

    /// One round of a wirehook row, on a site of its own: a queue row's
    /// store must not start with the last round's backlog.
    fn wirehook_row(
        &self,
        id: &str,
        round: usize,
        setup: &Setup,
        wasm: &Path,
    ) -> anyhow::Result<Measured> {
        let mut routes = format!(
            "[[route]]\nname = \"orders\"\npath = \"/hooks/orders\"\nprovider = \"{}\"\n\
             secret = \"env:{}\"\nplugins = [\"{}\"]\nmode = \"{}\"\n",
            setup.provider.as_str(),
            setup.provider.secret_var(),
            setup.plugin,
            setup.mode.as_str()
        );
        if setup.mode == Mode::Queue {
            // The row measures acknowledgement: the workers deliver on
            // the same cores meanwhile but fall behind, and the default
            // depth would turn the rest of the run into 503s.
            routes.push_str("\n[delivery]\nmax_queue_depth = 100000000\n");
        }
        if setup.isolation == Isolation::Event {
            routes.push_str(&format!(
                "\n[plugin.{}]\nisolation = \"event\"\n",
                setup.plugin
            ));
        }
        if setup.traced {
            routes.push_str(&format!(
                "\n[telemetry]\notlp_endpoint = \"http://{}\"\nsample_ratio = 1.0\n",
                collector::address()?
            ));
        }
        let dir = self
            .scratch
            .join(format!("row-{id}-{}-{round}", setup.plugin));
        let cache = self.scratch.join("cache");
        let site = Site::create(
            &dir,
            &[(setup.plugin.to_owned(), wasm.to_owned())],
            &routes,
            Some(&cache),
        )?;
        let measured = {
            let running = site.start(&self.paths.exe("wirehook"))?;
            let label = format!(
                "{}-{}-{}",
                setup.mode.as_str(),
                setup.provider.as_str(),
                setup.plugin
            );
            let expect = if setup.mode == Mode::Queue {
                Expect::Accepted
            } else {
                Expect::OrderStatus
            };
            let mut measured = self.measure(
                &running,
                &label,
                setup.provider.as_str(),
                expect,
                &["/hooks/orders"],
            )?;
            if setup.mode == Mode::Queue {
                measured.backlog = Some(site.backlog()?);
            }
            measured
        };
        // A queue row's store holds every event of its round.
        let _ = std::fs::remove_dir_all(&dir);
        Ok(measured)
    }
}
