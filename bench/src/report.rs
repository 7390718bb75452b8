//! The report of one run: the machine, the throughput table with each
//! figure as a ratio to the limit, memory and start-up, and the plugin
//! call micro-benchmark, as Markdown tables (what `bench/README.md` shows)
//! and as one JSON document.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::attack;
use crate::load::Outcome;

/// The row every ratio is taken against.
pub const LIMIT: &str = "1";
/// The respond row the "under attack" row is compared with.
pub const RESPOND: &str = "2";
/// The row of the built-in `hmac` provider and the same scheme as a
/// provider plugin, whose plugin line is compared with its built-in one.
pub const PROVIDER_PLUGIN: &str = "10";

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_mib: u64,
    pub kernel: String,
    /// 1-minute load average when the run started: other work on the
    /// machine shows here.
    pub load_at_start: String,
}

impl Machine {
    pub fn describe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(str::trim)
            })
            .unwrap_or("unknown")
            .to_owned();
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib / 1024);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_at_start: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_owned(),
        }
    }
}

/// One line of the throughput table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub name: String,
    /// The median round's measurement, with the errors of every round,
    /// or why there is none ("not built", "not available", or the first
    /// round that failed).
    pub result: Result<Measured, String>,
    /// Each round's throughput over the limit's in the same round, in
    /// round order; empty without a measurement.
    pub ratios: Vec<f64>,
    /// A line measured against another one of the same rounds rather
    /// than against the limit alone: the "under attack" row against the
    /// unattacked respond row, the provider plugin against the built-in.
    pub versus: Option<Versus>,
    /// The load's connections where they are not the table's: the line's
    /// limit is then the first line with as many.
    pub connections: Option<usize>,
}

/// A line's throughput against a baseline line's, round by round.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    /// What it is compared with, as the line under the table names it
    /// ("the unattacked respond row (row 2)").
    pub baseline: String,
    /// Each round's throughput over the baseline's in the same round.
    pub ratios: Vec<f64>,
    /// The ratio the line should reach.
    pub target: f64,
}

impl Row {
    /// A row from its rounds, each beside the limit's throughput in the
    /// same round. The row's measurement is its median round by ratio
    /// (by throughput where there is no limit to divide by), so that the
    /// figures of one line come from one round, and one round the
    /// machine had a slow moment in moves neither.
    pub fn from_rounds(
        id: &str,
        name: &str,
        rounds: Vec<Result<Measured, String>>,
        limits: &[Option<f64>],
    ) -> Self {
        let row = |result, ratios| Self {
            id: id.to_owned(),
            name: name.to_owned(),
            result,
            ratios,
            versus: None,
            connections: None,
        };
        let measured: Result<Vec<Measured>, String> = rounds.into_iter().collect();
        let mut measured = match measured {
            Ok(measured) if !measured.is_empty() => measured,
            Ok(_) => return row(Err("not measured".to_owned()), Vec::new()),
            Err(why) => return row(Err(why), Vec::new()),
        };
        let ratios: Option<Vec<f64>> = measured
            .iter()
            .zip(limits)
            .map(|(m, limit)| limit.filter(|l| *l > 0.0).map(|l| m.load.rps / l))
            .collect();
        let ratios = ratios
            .filter(|r| r.len() == measured.len())
            .unwrap_or_default();
        let key = |i: usize| ratios.get(i).copied().unwrap_or(measured[i].load.rps);
        let mut order: Vec<usize> = (0..measured.len()).collect();
        order.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
        // A round that answered with errors must not hide behind a
        // median round that did not.
        let errors = measured.iter().map(|m| m.load.errors).sum();
        let wrong_answers = measured.iter().map(|m| m.load.wrong_answers).sum();
        let first_wrong = measured.iter().find_map(|m| m.load.first_wrong.clone());
        let mut median = measured.swap_remove(order[(order.len() - 1) / 2]);
        median.load.errors = errors;
        median.load.wrong_answers = wrong_answers;
        median.load.first_wrong = first_wrong;
        row(Ok(median), ratios)
    }

    /// The median of the rounds' ratios: the median round's.
    pub fn ratio(&self) -> Option<f64> {
        median(&self.ratios)
    }
}

/// Each round's throughput over `baseline`'s in the same round, for the
/// rounds in which both were measured.
pub fn round_ratios(rounds: &[Option<f64>], baseline: &[Option<f64>]) -> Vec<f64> {
    rounds
        .iter()
        .zip(baseline)
        .filter_map(|(rps, base)| Some((*rps)? / base.filter(|b| *b > 0.0)?))
        .collect()
}

/// The median of `values` (the lower one of an even number).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub load: Outcome,
    /// The target's resident memory after the run, KiB.
    pub rss_kib: u64,
    /// The target's CPU time (its children's too), user and system, over
    /// the whole run divided by the requests it answered in the run: less
    /// moved by the machine's other work than req/s, and what a change
    /// to the target's code shows in first.
    pub cpu_us_per_request: Option<f64>,
    /// Queue rows: events accepted but not yet delivered when the load
    /// stopped, the workers having delivered on the same cores meanwhile.
    pub backlog: Option<u64>,
    /// The "under attack" row: what the attack did meanwhile.
    pub attack: Option<attack::Summary>,
}

/// Memory and start-up of one set of plugins.
#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub name: String,
    pub result: Result<FootprintFigures, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FootprintFigures {
    /// Start to "listening" with an empty compilation cache.
    pub cold_start_ms: f64,
    /// The same, restarted with the cache the first start filled.
    pub warm_start_ms: f64,
    /// Start to "listening" with an empty cache and each plugin compiled
    /// ahead of time (`wirehook compile`, as `plugins/build` does).
    pub precompiled_start_ms: f64,
    pub idle_rss_kib: u64,
    pub loaded_rss_kib: u64,
}

/// One criterion benchmark's median.
#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    pub name: String,
    pub median_ns: f64,
}

impl Micro {
    /// The medians criterion wrote for the plugin-call benchmark, if it ran.
    pub fn read_criterion(dir: &Path) -> Vec<Self> {
        let Ok(entries) = std::fs::read_dir(dir.join("plugin call")) else {
            return Vec::new();
        };
        let mut micro: Vec<_> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let text = std::fs::read_to_string(entry.path().join("new/estimates.json")).ok()?;
                let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
                Some(Self {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    median_ns: estimates["median"]["point_estimate"].as_f64()?,
                })
            })
            .collect();
        micro.sort_by(|a, b| a.name.cmp(&b.name));
        micro
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Times every target was measured, one after the other in table order.
    pub rounds: usize,
    pub rows: Vec<Row>,
    pub footprints: Vec<Footprint>,
    pub soaks: Vec<crate::soak::Soak>,
    pub micro: Vec<Micro>,
}

impl Report {
    /// The tables, in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "Machine: {}, {} cores, {} MiB, Linux {}; load average {} at start.",
            m.cpu, m.cores, m.memory_mib, m.kernel, m.load_at_start
        );
        let _ = writeln!(
            out,
            "Load: {} keep-alive connections, {} s warm-up, {} s measured per row, \
             {} round(s): each line is its median round by ratio to the limit \
             measured in the same round; \"rounds\" gives every round's ratio.\n",
            self.connections, self.warmup_s, self.duration_s, self.rounds
        );
        out.push_str(
            "| # | target | req/s | × limit | rounds | p50 | p99 | p99.9 | p99, p99.9 × limit's | errors | CPU / request | RSS |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        // The tail as a ratio of the limit's, each of its median round:
        // the limit with as many connections, the first line with them.
        let limit_tail = |connections: Option<usize>| {
            self.rows
                .iter()
                .find(|row| row.connections == connections)
                .filter(|row| row.id == LIMIT || connections.is_some())
                .and_then(|row| {
                    row.result
                        .as_ref()
                        .ok()
                        .map(|m| (m.load.p99_us, m.load.p999_us))
                })
        };
        let tail = |row: &Row, load: &Outcome| match limit_tail(row.connections) {
            Some((p99, p999)) if p99 > 0 && p999 > 0 => format!(
                "{:.1}×, {:.1}×",
                load.p99_us as f64 / p99 as f64,
                load.p999_us as f64 / p999 as f64
            ),
            _ => "–".to_owned(),
        };
        for row in &self.rows {
            match &row.result {
                Ok(measured) => {
                    let load = &measured.load;
                    let ratio = row
                        .ratio()
                        .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"));
                    let rounds: Vec<String> =
                        row.ratios.iter().map(|r| format!("{r:.2}")).collect();
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        row.id,
                        row.name,
                        load.rps,
                        ratio,
                        rounds.join(" "),
                        micros(load.p50_us),
                        micros(load.p99_us),
                        micros(load.p999_us),
                        tail(row, load),
                        load.errors,
                        measured
                            .cpu_us_per_request
                            .map_or_else(|| "–".to_owned(), |us| format!("{us:.1} µs")),
                        mib(measured.rss_kib)
                    );
                }
                Err(why) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {why} | | | | | | | | | |",
                        row.id, row.name
                    );
                }
            }
        }
        for row in &self.rows {
            if let Ok(Measured { load, .. }) = &row.result
                && load.wrong_answers > 0
            {
                let _ = writeln!(
                    out,
                    "\nRow {} ({}): {} wrong answers; the first: {}.",
                    row.id,
                    row.name,
                    load.wrong_answers,
                    load.first_wrong.as_deref().unwrap_or("?")
                );
            }
        }
        for row in &self.rows {
            let (Ok(measured), Some(versus)) = (&row.result, &row.versus) else {
                continue;
            };
            let Some(ratio) = median(&versus.ratios) else {
                continue;
            };
            let rounds: Vec<String> = versus.ratios.iter().map(|r| format!("{r:.2}")).collect();
            let _ = writeln!(
                out,
                "\nRow {} ({}): {ratio:.2}× {} of the same round (rounds: {}; target ≥ {:.1}×).",
                row.id,
                row.name,
                versus.baseline,
                rounds.join(" "),
                versus.target
            );
            if let Some(attack) = &measured.attack {
                let _ = writeln!(
                    out,
                    "The attack, in the median round: {}.",
                    describe(attack)
                );
            }
        }
        for row in &self.rows {
            if let Ok(Measured {
                backlog: Some(backlog),
                ..
            }) = &row.result
            {
                let _ = writeln!(
                    out,
                    "\nRow {} ({}): {backlog} events still waiting for delivery when the load stopped.",
                    row.id, row.name
                );
            }
        }
        if !self.footprints.is_empty() {
            out.push_str("\n| plugins | cold start (empty cache) | warm start (cache filled) | first start, precompiled | idle RSS | loaded RSS |\n");
            out.push_str("|---|---:|---:|---:|---:|---:|\n");
            for footprint in &self.footprints {
                match &footprint.result {
                    Ok(f) => {
                        let _ = writeln!(
                            out,
                            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} |",
                            footprint.name,
                            f.cold_start_ms,
                            f.warm_start_ms,
                            f.precompiled_start_ms,
                            mib(f.idle_rss_kib),
                            mib(f.loaded_rss_kib)
                        );
                    }
                    Err(why) => {
                        let _ = writeln!(out, "| {} | {why} | | | | |", footprint.name);
                    }
                }
            }
        }
        out.push_str(&crate::soak::markdown(&self.soaks));
        if !self.micro.is_empty() {
            out.push_str("\n| one plugin call (criterion, median) | time |\n|---|---:|\n");
            for micro in &self.micro {
                let _ = writeln!(
                    out,
                    "| {} | {:.1} µs |",
                    micro.name,
                    micro.median_ns / 1000.0
                );
            }
        }
        out
    }
}

/// What an attack did, in a sentence.
fn describe(attack: &attack::Summary) -> String {
    let slow = |what: &str, t: &attack::SlowTally| {
        format!(
            "{} {what} connections held open ({} opened, {} closed by the daemon, {} refused)",
            t.clients, t.opened, t.closed_by_daemon, t.refused
        )
    };
    let requests = |what: &str, t: &attack::RequestTally| {
        let statuses: Vec<String> = t
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!(
            "{} {what} clients sent {} requests (answers {})",
            t.clients,
            t.sent,
            statuses.join(", ")
        )
    };
    [
        slow("slow-header", &attack.slow_headers),
        slow("stalled-body", &attack.stalled_bodies),
        requests("OneRoute bad-HMAC 1 MiB", &attack.oneroute),
        requests("goflow wrong-token", &attack.goflow),
        format!(
            "the attack's own CPU: {:.2} s in its {:.1} s ({:.0} % of one core)",
            attack.cpu_secs,
            attack.wall_secs,
            100.0 * attack.cpu_secs / attack.wall_secs.max(f64::EPSILON)
        ),
    ]
    .join("; ")
}

pub fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(rps: f64) -> Result<Measured, String> {
        Ok(Measured {
            load: Outcome {
                label: "row".into(),
                connections: 32,
                seconds: 1.0,
                requests: rps as u64,
                rps,
                p50_us: rps as u64,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
                errors: 0,
                wrong_answers: 0,
                first_wrong: None,
                answered_in_run: rps as u64,
                statuses: Default::default(),
            },
            rss_kib: 0,
            cpu_us_per_request: None,
            backlog: None,
            attack: None,
        })
    }

    #[test]
    fn a_row_is_its_median_round_by_ratio_to_that_rounds_limit() {
        // Round 2 has the most req/s but its limit ran faster still.
        let limits = [Some(100.0), Some(200.0), Some(50.0)];
        let rounds = vec![measured(60.0), measured(80.0), measured(45.0)];
        let row = Row::from_rounds("2", "respond", rounds, &limits);
        assert_eq!(row.ratios, vec![0.6, 0.4, 0.9]);
        assert_eq!(row.ratio(), Some(0.6));
        // The line's other figures come from that same round.
        assert_eq!(row.result.unwrap().load.p50_us, 60);
    }

    #[test]
    fn without_a_limit_the_median_round_is_by_throughput() {
        let rounds = vec![measured(30.0), measured(10.0), measured(20.0)];
        let row = Row::from_rounds("1", "limit", rounds, &[None, None, None]);
        assert!(row.ratios.is_empty());
        assert_eq!(row.ratio(), None);
        assert_eq!(row.result.unwrap().load.rps, 20.0);
    }

    #[test]
    fn every_rounds_errors_count() {
        let mut with_errors = measured(10.0);
        let load = &mut with_errors.as_mut().unwrap().load;
        load.errors = 3;
        load.wrong_answers = 2;
        load.first_wrong = Some("204 instead of 200: empty body".into());
        let rounds = vec![measured(20.0), with_errors, measured(30.0)];
        let row = Row::from_rounds("2", "respond", rounds, &[Some(100.0); 3]);
        let median = row.result.unwrap();
        assert_eq!(median.load.rps, 20.0);
        assert_eq!(median.load.errors, 3);
        assert_eq!(median.load.wrong_answers, 2);
        assert_eq!(
            median.load.first_wrong.as_deref(),
            Some("204 instead of 200: empty body")
        );
    }

    #[test]
    fn the_attacked_row_is_compared_round_by_round() {
        let attacked = [Some(40.0), Some(10.0), None, Some(30.0)];
        let unattacked = [Some(50.0), Some(40.0), Some(10.0), None];
        let ratios = round_ratios(&attacked, &unattacked);
        assert_eq!(ratios, vec![0.8, 0.25]);
        assert_eq!(median(&ratios), Some(0.25));
        assert_eq!(median(&[0.9, 0.5, 0.7]), Some(0.7));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_failed_round_fails_the_row() {
        let rounds = vec![measured(30.0), Err("failed: no answer".into())];
        let row = Row::from_rounds("4", "queue", rounds, &[Some(1.0), Some(1.0)]);
        assert_eq!(row.result.unwrap_err(), "failed: no answer");
        assert!(row.ratios.is_empty());
    }

    #[test]
    fn each_rows_tail_is_given_as_a_ratio_of_the_limits() {
        let with_tail = |rps: f64, p99_us: u64, p999_us: u64| {
            let mut m = measured(rps);
            let load = &mut m.as_mut().unwrap().load;
            load.p99_us = p99_us;
            load.p999_us = p999_us;
            m
        };
        let limit = Row::from_rounds("1", "limit", vec![with_tail(100.0, 1000, 2000)], &[None]);
        let respond = Row::from_rounds(
            "2",
            "respond",
            vec![with_tail(60.0, 2500, 3000)],
            &[Some(100.0)],
        );
        // A line with connections of its own: its limit is the first
        // line with as many.
        let wide = |id: &str, row: Result<Measured, String>, limit: f64| Row {
            connections: Some(256),
            ..Row::from_rounds(id, "wide", vec![row], &[Some(limit)])
        };
        let wide_limit = wide("11", with_tail(100.0, 4000, 8000), 100.0);
        let wide = wide("12", with_tail(50.0, 8000, 8000), 100.0);
        let report = Report {
            machine: Machine {
                cpu: "cpu".into(),
                cores: 2,
                memory_mib: 1024,
                kernel: "6".into(),
                load_at_start: "0.00".into(),
            },
            connections: 32,
            warmup_s: 1.0,
            duration_s: 1.0,
            rounds: 1,
            rows: vec![limit, respond, wide_limit, wide],
            footprints: Vec::new(),
            soaks: Vec::new(),
            micro: Vec::new(),
        };
        let table = report.markdown();
        let line = |id: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {id} |")))
                .unwrap_or_else(|| panic!("no row {id} in\n{table}"))
                .to_owned()
        };
        assert!(line("1").contains("| 1.0×, 1.0× |"), "{table}");
        assert!(line("2").contains("| 2.5×, 1.5× |"), "{table}");
        assert!(line("11").contains("| 1.0×, 1.0× |"), "{table}");
        assert!(line("12").contains("| 2.0×, 1.0× |"), "{table}");
    }
}
