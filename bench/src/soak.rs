//! The soak table: a row held under load for minutes on one daemon, its
//! throughput and tail minute by minute and its resident memory sampled
//! at a fixed interval, to show whether either drifts once warm.

use std::fmt::Write as _;

use serde::Serialize;

/// One soaked row, or why it could not be.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub name: String,
    pub result: Result<SoakFigures, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakFigures {
    /// Seconds of load in each segment; the first is the warm-up.
    pub segment_s: f64,
    /// One load-generator run after another on the same daemon.
    pub segments: Vec<Segment>,
    /// Resident memory, KiB, with the seconds since the first segment
    /// started counting (negative: during the warm-up before it).
    pub rss_kib: Vec<(f64, u64)>,
    /// The daemon's CPU over the whole soak over the requests answered.
    pub cpu_us_per_request: Option<f64>,
    /// Queue rows: events not yet delivered when the load stopped.
    pub backlog: Option<u64>,
}

/// One segment of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub rps: f64,
    pub p99_us: u64,
    pub errors: u64,
}

impl SoakFigures {
    /// RSS when the first segment, the warm-up, ended: the last sample
    /// taken by then.
    pub fn warm_rss_kib(&self) -> Option<u64> {
        self.rss_kib
            .iter()
            .take_while(|(t, _)| *t <= self.segment_s)
            .last()
            .map(|(_, kib)| *kib)
    }

    /// RSS at the last sample.
    pub fn end_rss_kib(&self) -> Option<u64> {
        self.rss_kib.last().map(|(_, kib)| *kib)
    }

    /// The most RSS any sample after the warm-up saw.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.rss_kib
            .iter()
            .filter(|(t, _)| *t > self.segment_s)
            .map(|(_, kib)| *kib)
            .max()
    }

    /// Every segment's errors.
    pub fn errors(&self) -> u64 {
        self.segments.iter().map(|s| s.errors).sum()
    }
}

/// The soak table and its lines, in Markdown; empty without soaks.
pub fn markdown(soaks: &[Soak]) -> String {
    let mut out = String::new();
    if soaks.is_empty() {
        return out;
    }
    out.push_str(
        "\n| soak | minutes | req/s, first and last segment | p99, first and last segment | errors | CPU / request | RSS warm | RSS peak after warm-up | RSS at end | growth after warm-up |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for soak in soaks {
        let f = match &soak.result {
            Ok(f) => f,
            Err(why) => {
                let _ = writeln!(out, "| {} | {why} | | | | | | | | |", soak.name);
                continue;
            }
        };
        let (Some(first), Some(last)) = (f.segments.first(), f.segments.last()) else {
            continue;
        };
        let growth = match (f.warm_rss_kib(), f.end_rss_kib()) {
            (Some(warm), Some(end)) if warm > 0 => format!(
                "{:+.1} MiB ({:+.1} %)",
                (end as f64 - warm as f64) / 1024.0,
                (end as f64 / warm as f64 - 1.0) * 100.0
            ),
            _ => "–".to_owned(),
        };
        let mib = |kib: Option<u64>| kib.map_or_else(|| "–".to_owned(), crate::report::mib);
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0} → {:.0} | {} → {} | {} | {} | {} | {} | {} | {growth} |",
            soak.name,
            f.segment_s * f.segments.len() as f64 / 60.0,
            first.rps,
            last.rps,
            crate::report::micros(first.p99_us),
            crate::report::micros(last.p99_us),
            f.errors(),
            f.cpu_us_per_request
                .map_or_else(|| "–".to_owned(), |us| format!("{us:.1} µs")),
            mib(f.warm_rss_kib()),
            mib(f.peak_rss_kib()),
            mib(f.end_rss_kib()),
        );
    }
    for soak in soaks {
        let Ok(f) = &soak.result else { continue };
        let rps: Vec<String> = f.segments.iter().map(|s| format!("{:.0}", s.rps)).collect();
        let rss: Vec<String> = f
            .rss_kib
            .iter()
            .filter(|(t, _)| *t >= 0.0)
            .map(|(_, kib)| format!("{:.1}", *kib as f64 / 1024.0))
            .collect();
        let _ = writeln!(
            out,
            "\nSoak {}: req/s by segment of {:.0} s: {}; RSS (MiB) every sample from the load's start: {}.",
            soak.name,
            f.segment_s,
            rps.join(" "),
            rss.join(" ")
        );
        if let Some(backlog) = f.backlog {
            let _ = writeln!(
                out,
                "{backlog} events still waiting for delivery when the load stopped."
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rss: &[(f64, u64)]) -> SoakFigures {
        SoakFigures {
            segment_s: 60.0,
            segments: vec![
                Segment {
                    rps: 100.0,
                    p99_us: 900,
                    errors: 1,
                },
                Segment {
                    rps: 90.0,
                    p99_us: 1_100,
                    errors: 2,
                },
            ],
            rss_kib: rss.to_vec(),
            cpu_us_per_request: Some(30.0),
            backlog: None,
        }
    }

    #[test]
    fn growth_is_measured_from_the_end_of_the_warm_up() {
        let f = figures(&[
            (-1.0, 10_240),
            (30.0, 20_480),
            (60.0, 25_600),
            (90.0, 30_720),
            (120.0, 26_624),
        ]);
        assert_eq!(f.warm_rss_kib(), Some(25_600));
        assert_eq!(f.peak_rss_kib(), Some(30_720));
        assert_eq!(f.end_rss_kib(), Some(26_624));
        assert_eq!(f.errors(), 3);
        let table = markdown(&[Soak {
            name: "row 2".into(),
            result: Ok(f),
        }]);
        assert!(table.contains("| row 2 | 2.0 | 100 → 90 |"), "{table}");
        assert!(table.contains("+1.0 MiB (+4.0 %)"), "{table}");
        assert!(
            table.contains("every sample from the load's start: 20.0 25.0 30.0 26.0."),
            "{table}"
        );
    }

    #[test]
    fn a_soak_that_failed_says_why() {
        let table = markdown(&[Soak {
            name: "row 4".into(),
            result: Err("failed: no site".into()),
        }]);
        assert!(table.contains("| row 4 | failed: no site |"), "{table}");
    }
}
