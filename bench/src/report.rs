//! The report of one run: the machine, the throughput table with each
//! figure as a ratio to the limit, memory and start-up, and the plugin
//! call micro-benchmark, as Markdown tables (what `bench/README.md` shows)
//! and as one JSON document.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::load::Outcome;

/// The row every ratio is taken against.
pub const LIMIT: &str = "1";

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
    /// The measurement, or why there is none ("not built", "not available").
    pub result: Result<Measured, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub load: Outcome,
    /// The target's resident memory after the run, KiB.
    pub rss_kib: u64,
    /// Queue rows: events accepted but not yet delivered when the load
    /// stopped, the workers having delivered on the same cores meanwhile.
    pub backlog: Option<u64>,
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
    pub rows: Vec<Row>,
    pub footprints: Vec<Footprint>,
    pub micro: Vec<Micro>,
}

impl Report {
    fn rps(&self, id: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.id == id)
            .and_then(|r| r.result.as_ref().ok())
            .map(|m| m.load.rps)
    }

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
            "Load: {} keep-alive connections, {} s warm-up, {} s measured per row.\n",
            self.connections, self.warmup_s, self.duration_s
        );
        let limit = self.rps(LIMIT);
        out.push_str("| # | target | req/s | × limit | p50 | p99 | p99.9 | errors | RSS |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            match &row.result {
                Ok(measured) => {
                    let load = &measured.load;
                    let ratio = match limit {
                        Some(limit) if limit > 0.0 => format!("{:.2}×", load.rps / limit),
                        _ => "–".to_owned(),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                        row.id,
                        row.name,
                        load.rps,
                        ratio,
                        micros(load.p50_us),
                        micros(load.p99_us),
                        micros(load.p999_us),
                        load.errors,
                        mib(measured.rss_kib)
                    );
                }
                Err(why) => {
                    let _ = writeln!(out, "| {} | {} | {why} | | | | | | |", row.id, row.name);
                }
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
            out.push_str("\n| plugins | cold start (empty cache) | warm start (cache filled) | idle RSS | loaded RSS |\n");
            out.push_str("|---|---:|---:|---:|---:|\n");
            for footprint in &self.footprints {
                match &footprint.result {
                    Ok(f) => {
                        let _ = writeln!(
                            out,
                            "| {} | {:.0} ms | {:.0} ms | {} | {} |",
                            footprint.name,
                            f.cold_start_ms,
                            f.warm_start_ms,
                            mib(f.idle_rss_kib),
                            mib(f.loaded_rss_kib)
                        );
                    }
                    Err(why) => {
                        let _ = writeln!(out, "| {} | {why} | | | |", footprint.name);
                    }
                }
            }
        }
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

fn micros(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.0} ms", us as f64 / 1000.0)
    } else if us >= 1000 {
        format!("{:.1} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
