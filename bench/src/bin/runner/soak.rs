//! The soaks: row 2 and row 4 held under load on one daemon for
//! `--soak-secs`, one load-generator run a segment, while a thread reads
//! the daemon's resident memory every `--soak-sample-secs`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use wirehook_bench::soak::{Segment, Soak, SoakFigures};
use wirehook_bench::targets::{Running, Site};

use super::wirehook::{Mode, QUEUE_GOFLOW, RESPOND_GOFLOW, Setup};
use super::{Bench, failed};

impl Bench<'_> {
    /// Every soak, in turn.
    pub(super) fn soaks(&self) -> Vec<Soak> {
        [
            ("row 2: respond, goflow + Rust order-status", RESPOND_GOFLOW),
            (
                "row 4: queue, goflow, acked after group commit",
                QUEUE_GOFLOW,
            ),
        ]
        .into_iter()
        .map(|(name, setup)| {
            let result = self.soak(&setup).map_err(|e| failed(&e));
            match &result {
                Ok(f) => eprintln!(
                    "soak {name}: {} segments, {} errors, RSS warm {:?} KiB, at end {:?} KiB",
                    f.segments.len(),
                    f.errors(),
                    f.warm_rss_kib(),
                    f.end_rss_kib()
                ),
                Err(why) => eprintln!("soak {name}: {why}"),
            }
            Soak {
                name: name.to_owned(),
                result,
            }
        })
        .collect()
    }

    fn soak(&self, setup: &Setup) -> anyhow::Result<SoakFigures> {
        let segment_s = self.args.soak_segment_secs;
        let segments = (self.args.soak_secs / segment_s).round().max(1.0) as usize;
        let components = self.components(setup).map_err(anyhow::Error::msg)?;
        let dir = self.site_dir("soak", 1, setup);
        let site = Site::create(&dir, &components, &self.routes(setup)?, Some(&self.cache()))?;
        let figures = {
            let running = site.start(&self.paths.exe("wirehook"))?;
            let cpu_before = running.cpu_time();
            let (stop, stopped) = mpsc::channel::<()>();
            let interval = Duration::from_secs_f64(self.args.soak_sample_secs);
            let (outcomes, rss_kib) = std::thread::scope(|scope| {
                let running = &running;
                let sampler = scope.spawn(move || sample(running, interval, &stopped));
                let outcomes: anyhow::Result<Vec<_>> = (0..segments)
                    .map(|n| {
                        self.load(
                            &[running],
                            &format!("soak-{}", setup.label()),
                            setup.provider.load(),
                            setup.expect(),
                            &["/hooks/orders"],
                            // One warm-up, before the first segment.
                            if n == 0 { self.args.warmup } else { 0.0 },
                            segment_s,
                        )
                    })
                    .collect();
                drop(stop);
                let rss_kib = sampler.join().expect("the sampler does not panic");
                (outcomes, rss_kib)
            });
            let outcomes = outcomes?;
            let answered: u64 = outcomes.iter().map(|o| o.answered_in_run).sum();
            if answered == 0 {
                bail!("no request was answered");
            }
            let cpu = running.cpu_time().saturating_sub(cpu_before);
            let backlog = (setup.mode == Mode::Queue)
                .then(|| site.backlog())
                .transpose()?;
            SoakFigures {
                segment_s,
                segments: outcomes
                    .iter()
                    .map(|o| Segment {
                        rps: o.rps,
                        p99_us: o.p99_us,
                        errors: o.errors,
                    })
                    .collect(),
                rss_kib: shift(rss_kib, self.args.warmup),
                cpu_us_per_request: Some(cpu.as_secs_f64() * 1e6 / answered as f64),
                backlog,
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        Ok(figures)
    }
}

/// Reads `running`'s RSS now and every `interval` until `stopped` hangs
/// up: each sample with the seconds since the first.
fn sample(running: &Running, interval: Duration, stopped: &mpsc::Receiver<()>) -> Vec<(f64, u64)> {
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        samples.push((start.elapsed().as_secs_f64(), running.rss_kib()));
        // The interval is the sampling period, not a wait for anything:
        // the hang-up ends it at once.
        if !matches!(
            stopped.recv_timeout(interval),
            Err(mpsc::RecvTimeoutError::Timeout)
        ) {
            return samples;
        }
    }
}

/// Samples timed from the sampler's start, retimed from the end of the
/// warm-up, when the first segment starts to count.
fn shift(samples: Vec<(f64, u64)>, warmup: f64) -> Vec<(f64, u64)> {
    samples
        .into_iter()
        .map(|(t, kib)| (t - warmup, kib))
        .collect()
}
