//! One measurement: the load generator run against a started target, its
//! JSON line read back, and the target's CPU time and memory around it.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use clap::ValueEnum as _;
use wirehook_bench::expect::Expect;
use wirehook_bench::load::Outcome;
use wirehook_bench::report::Measured;
use wirehook_bench::targets::{GOFLOW_TOKEN, HMAC_SECRET, Running, TRUORA_SECRET};

use super::Bench;

impl Bench<'_> {
    /// Runs the load generator against `running` and reads its line.
    pub(super) fn measure(
        &self,
        running: &Running,
        label: &str,
        provider: &str,
        expect: Expect,
        paths: &[&str],
    ) -> anyhow::Result<Measured> {
        self.measure_all(&[running], label, provider, expect, paths)
    }

    /// As [`Bench::measure`], with the connections spread over several
    /// instances: CPU and memory are theirs together.
    pub(super) fn measure_all(
        &self,
        running: &[&Running],
        label: &str,
        provider: &str,
        expect: Expect,
        paths: &[&str],
    ) -> anyhow::Result<Measured> {
        let cpu_time = || {
            running
                .iter()
                .map(|r| r.cpu_time())
                .sum::<std::time::Duration>()
        };
        let cpu_before = cpu_time();
        let load = self.load(
            running,
            label,
            provider,
            expect,
            paths,
            self.args.warmup,
            self.args.duration,
        )?;
        let cpu = cpu_time().saturating_sub(cpu_before);
        let cpu_us_per_request = (load.answered_in_run > 0)
            .then(|| cpu.as_secs_f64() * 1e6 / load.answered_in_run as f64);
        Ok(Measured {
            load,
            rss_kib: running.iter().map(|r| r.rss_kib()).sum(),
            cpu_us_per_request,
            backlog: None,
            attack: None,
        })
    }

    /// Runs the load generator once: `warmup` seconds not counted, then
    /// `duration` measured.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn load(
        &self,
        running: &[&Running],
        label: &str,
        provider: &str,
        expect: Expect,
        paths: &[&str],
        warmup: f64,
        duration: f64,
    ) -> anyhow::Result<Outcome> {
        let secret = match provider {
            "truora" => TRUORA_SECRET,
            "hmac" => HMAC_SECRET,
            _ => GOFLOW_TOKEN,
        };
        let mut command = Command::new(self.paths.exe("wirehook-loadgen"));
        for target in running {
            command.arg("--addr").arg(target.addr.to_string());
        }
        command
            .args(["--provider", provider, "--secret", secret, "--label", label])
            .arg("--connections")
            .arg(self.args.connections.to_string())
            .arg("--warmup")
            .arg(warmup.to_string())
            .arg("--duration")
            .arg(duration.to_string())
            .arg("--expect")
            .arg(
                expect
                    .to_possible_value()
                    .expect("every expectation has a name")
                    .get_name(),
            );
        for path in paths {
            command.args(["--path", path]);
        }
        let output = command
            .stderr(Stdio::inherit())
            .output()
            .context("running the load generator")?;
        if !output.status.success() {
            bail!("the load generator failed on {label}: {}", output.status);
        }
        let line = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(line.trim())
            .with_context(|| format!("reading the load generator's line: {line}"))
    }
}
