//! `wirehook-bench`: runs every line of the side-by-side table
//! (`table`) one after another on 127.0.0.1 with the same load, round
//! after round (`--rounds`), each wirehook row on a site of its own
//! (`wirehook`), row 7 under attack (`attacked`), each measured by the
//! load generator (`measure`), the Express peer installed first
//! (`express`); measures memory and start-up (`footprint`), soaks rows 2
//! and 4 (`soak`), reads the plugin-call micro-benchmark if it ran, and
//! prints the report. `bench/run` builds everything and calls this.

#![forbid(unsafe_code)]

mod attacked;
mod collector;
mod express;
mod footprint;
mod measure;
mod postgres;
mod soak;
mod table;
mod wirehook;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::{
    LIMIT, Machine, Measured, Micro, PROVIDER_PLUGIN, RESPOND, Report, Row, Versus, round_ratios,
};
use wirehook_bench::targets;

use self::table::{Kind, TABLE, WIDE_CONNECTIONS, WIDE_ROW};
use self::wirehook::{Components, RESPOND_GOFLOW, Setup};

#[derive(Debug, Clone, Parser)]
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
    /// and no footprint or soak unless `footprint` or `soak` is one of
    /// them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds each soak (rows 2 and 4 on one daemon) is held under load.
    #[arg(long, default_value_t = 600.0)]
    soak_secs: f64,
    /// Seconds of each of a soak's load-generator runs.
    #[arg(long, default_value_t = 60.0)]
    soak_segment_secs: f64,
    /// Seconds between a soak's readings of the daemon's RSS.
    #[arg(long, default_value_t = 10.0)]
    soak_sample_secs: f64,
}

impl Args {
    /// Whether `--only` leaves `part` in.
    fn includes(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|id| id == part)
    }
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

    /// An example plugin, or a fixture `plugins/build --bench` builds,
    /// or the table's reason for its absence.
    fn plugin(&self, name: &str) -> Result<PathBuf, String> {
        let file = format!("{name}.wasm");
        let dist = self.root.join("plugins/dist").join(&file);
        let fixture = self.target.join("bench-plugins").join(&file);
        if dist.is_file() {
            Ok(dist)
        } else if fixture.is_file() {
            Ok(fixture)
        } else {
            Err(format!(
                "not built (plugins/dist/{file}; plugins/build --bench)"
            ))
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.warmup = 0.2;
        args.duration = 1.0;
        args.rounds = 1;
        args.soak_secs = 2.0;
        args.soak_segment_secs = 1.0;
        args.soak_sample_secs = 0.5;
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if args.soak_segment_secs <= 0.0 || args.soak_sample_secs <= 0.0 {
        bail!("--soak-segment-secs and --soak-sample-secs must be above 0");
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
    let footprints = if args.includes("footprint") {
        bench.footprints()?
    } else {
        Vec::new()
    };
    let soaks = if args.includes("soak") {
        bench.soaks()
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
        soaks,
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
        .chain(
            report
                .soaks
                .iter()
                .filter(|s| match &s.result {
                    Ok(f) => f.errors() > 0,
                    Err(why) => why.starts_with(FAILED),
                })
                .map(|s| format!("soak {}", s.name)),
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

/// What a line of the table starts and puts the load on.
enum Target {
    Limit,
    Wirehook {
        setup: Setup,
        components: Components,
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
                        .components(&setup)
                        .map(|components| Target::Wirehook { setup, components }),
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
        let mut lines = self.lines();
        lines.retain(|line| self.args.includes(line.id));
        // Row 11 is measured with its own connection count.
        let wide_args = Args {
            connections: WIDE_CONNECTIONS,
            ..self.args.clone()
        };
        let wide = Bench {
            args: &wide_args,
            ..*self
        };
        let rounds = self.args.rounds;
        let mut measured: Vec<Vec<Result<Measured, String>>> =
            lines.iter().map(|_| Vec::new()).collect();
        for round in 1..=rounds {
            for (line, results) in lines.iter().zip(&mut measured) {
                let Ok(target) = &line.target else {
                    continue;
                };
                let bench = if line.id == WIDE_ROW { &wide } else { self };
                let result = bench.run(target, line.id, round).map_err(|e| failed(&e));
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
        let wide_limits = throughputs(WIDE_ROW);
        let unattacked = throughputs(RESPOND);
        let built_in = throughputs(PROVIDER_PLUGIN);
        lines
            .into_iter()
            .zip(measured)
            .map(|(line, rounds)| match line.target {
                Err(why) => Row {
                    id: line.id.to_owned(),
                    name: line.name.to_owned(),
                    result: Err(why),
                    ratios: Vec::new(),
                    versus: None,
                    connections: None,
                },
                Ok(target) => {
                    let throughputs: Vec<Option<f64>> = rounds
                        .iter()
                        .map(|r| r.as_ref().ok().map(|m| m.load.rps))
                        .collect();
                    let versus = |baseline: &str, of: &[Option<f64>]| Versus {
                        baseline: baseline.to_owned(),
                        ratios: round_ratios(&throughputs, of),
                        target: 0.8,
                    };
                    let wide_line = line.id == WIDE_ROW;
                    let limits = if wide_line { &wide_limits } else { &limits };
                    let mut row = Row::from_rounds(line.id, line.name, rounds, limits);
                    row.connections = wide_line.then_some(WIDE_CONNECTIONS);
                    row.versus = match target {
                        Target::UnderAttack { .. } => Some(versus(
                            &format!("the unattacked respond row (row {RESPOND})"),
                            &unattacked,
                        )),
                        Target::Wirehook { setup, .. } if setup.provider.plugin().is_some() => {
                            Some(versus(
                                &format!("the built-in provider's line of row {PROVIDER_PLUGIN}"),
                                &built_in,
                            ))
                        }
                        _ => None,
                    };
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
            Target::Wirehook { setup, components } => {
                self.wirehook_row(id, round, setup, components)
            }
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
}
