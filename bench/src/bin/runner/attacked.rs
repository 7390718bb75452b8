//! The "under attack" row: row 2's respond route (goflow, Rust
//! order-status) measured with the same load while `wirehook-attack`
//! holds slow connections open and sends bad signatures to it and to a
//! OneRoute route beside it. The daemon runs with the shipped defaults of
//! every `[server]` limit, so the row measures what users get.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use wirehook_bench::attack::Summary;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::Measured;
use wirehook_bench::targets::{GOFLOW_TOKEN, ONEROUTE_SECRET_VAR, Running, Site, cpu_time_of};

use super::Bench;

/// How long the attack may take to open its connections, and to stop
/// and report.
const ATTACK_WAIT: Duration = Duration::from_secs(60);

impl Bench<'_> {
    /// One round of the row, on a site of its own.
    pub(super) fn attacked_row(
        &self,
        id: &str,
        round: usize,
        wasm: &Path,
    ) -> anyhow::Result<Measured> {
        let routes = format!(
            "[[route]]\nname = \"orders\"\npath = \"/hooks/orders\"\nprovider = \"goflow\"\n\
             secret = \"env:BENCH_GOFLOW_TOKEN\"\nplugins = [\"order-status\"]\nmode = \"respond\"\n\n\
             [[route]]\nname = \"oneroute\"\npath = \"/hooks/oneroute\"\nprovider = \"oneroute\"\n\
             secret = \"env:{ONEROUTE_SECRET_VAR}\"\nplugins = [\"order-status\"]\nmode = \"respond\"\n"
        );
        let dir = self.scratch.join(format!("row-{id}-attacked-{round}"));
        let site = Site::create(
            &dir,
            &[("order-status".to_owned(), wasm.to_owned())],
            &routes,
            Some(&self.cache()),
        )?;
        let measured = {
            let running = site.start(&self.paths.exe("wirehook"))?;
            let attacker = Attacker::start(&self.paths.exe("wirehook-attack"), &running)?;
            let mut measured = self.measure(
                &running,
                "respond-goflow-attacked",
                "goflow",
                Expect::OrderStatus,
                &["/hooks/orders"],
            )?;
            let summary = attacker.stop()?;
            check(&summary)?;
            measured.attack = Some(summary);
            measured
        };
        let _ = std::fs::remove_dir_all(&dir);
        Ok(measured)
    }
}

/// An attack that did not happen, or that got in, makes the row wrong.
fn check(summary: &Summary) -> anyhow::Result<()> {
    for (what, tally) in [("OneRoute", &summary.oneroute), ("goflow", &summary.goflow)] {
        if tally.clients > 0 && tally.sent == 0 {
            bail!("the {what} attackers sent nothing");
        }
        if tally.accepted() > 0 {
            bail!(
                "{} of the {what} attackers' bad signatures were accepted",
                tally.accepted()
            );
        }
    }
    Ok(())
}

/// A running `wirehook-attack`, killed if dropped before it reports.
struct Attacker {
    child: Child,
    started: Instant,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Attacker {
    /// Starts the attack on `target` and waits until it is under way.
    fn start(binary: &Path, target: &Running) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .arg("--addr")
            .arg(target.addr.to_string())
            .args(["--goflow-token", GOFLOW_TOKEN])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the attack")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut attacker = Self {
            child,
            started,
            stdin,
            lines,
        };
        match attacker.lines.recv_timeout(ATTACK_WAIT) {
            Ok(line) if line == "attacking" => Ok(attacker),
            Ok(line) => Err(anyhow!("the attack said {line:?} instead of starting")),
            Err(_) => Err(anyhow!(
                "the attack did not start within {ATTACK_WAIT:?}{}",
                attacker.exit_status()
            )),
        }
    }

    /// Ends the attack (by closing its input) and reads what it did.
    fn stop(mut self) -> anyhow::Result<Summary> {
        let cpu = cpu_time_of(self.child.id()).unwrap_or_default();
        let wall = self.started.elapsed();
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let line = self.lines.recv_timeout(ATTACK_WAIT).map_err(|_| {
            anyhow!(
                "the attack did not report within {ATTACK_WAIT:?}{}",
                self.exit_status()
            )
        })?;
        let mut summary: Summary = serde_json::from_str(&line)
            .with_context(|| format!("reading the attack's summary: {line}"))?;
        summary.cpu_secs = cpu.as_secs_f64();
        summary.wall_secs = wall.as_secs_f64();
        let _ = self.child.wait();
        Ok(summary)
    }

    /// ", it exited with …" once it has.
    fn exit_status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!(", it exited with {status}"),
            _ => String::new(),
        }
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
