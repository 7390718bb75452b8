//! What the load generator is pointed at: a wirehook daemon with a
//! generated config, the bare-axum limit, the Express peer. Each runs on
//! 127.0.0.1, is ready when it says it listens (or, for Express, accepts a
//! connection), and is killed with its child processes when dropped.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use rustix::process::{Pid, Signal};

/// How long a target may take to become ready (a cold Python component
/// compiles for seconds).
const READY_WAIT: Duration = Duration::from_secs(120);

/// `/proc`'s unit of CPU time: Linux reports it in USER_HZ, 100 a
/// second on every architecture it runs on.
const TICK: Duration = Duration::from_millis(10);

/// The secrets every target is configured with.
pub const GOFLOW_TOKEN: &str = "bench";
pub const TRUORA_SECRET: &str = "bench-truora-secret";
pub const HMAC_SECRET: &str = "bench-hmac-secret";
/// The OneRoute route's secret, which only the daemon knows: the row that
/// has one sends it nothing but bad signatures.
pub const ONEROUTE_SECRET_VAR: &str = "BENCH_ONEROUTE_SECRET";
const ONEROUTE_SECRET: &str = "bench-oneroute-secret";

/// A started target.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    /// From spawn to ready.
    pub startup: Duration,
}

impl Running {
    /// Resident memory of the target and its children (an Express
    /// cluster is several processes), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id();
        std::iter::once(pid)
            .chain(children(pid))
            .filter_map(vm_rss_kib)
            .sum()
    }

    /// CPU time the target and its children have used so far, user and
    /// system, to the clock tick.
    pub fn cpu_time(&self) -> Duration {
        let pid = self.child.id();
        std::iter::once(pid)
            .chain(children(pid))
            .filter_map(cpu_time_of)
            .sum()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Cluster workers first, each by its own (positive) pid: never a
        // group, never -1.
        for pid in children(self.child.id()) {
            if let Some(pid) = i32::try_from(pid)
                .ok()
                .filter(|&p| p > 1)
                .and_then(Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory with a wirehook config, its plugins and its store.
pub struct Site {
    pub dir: PathBuf,
    pub config: PathBuf,
    /// The PostgreSQL connection string the store is on; `None` for
    /// SQLite under `dir`.
    pub database: Option<String>,
}

/// The variable a PostgreSQL site's `storage.url` names.
const DATABASE_URL_VAR: &str = "BENCH_DATABASE_URL";

impl Site {
    /// Writes `routes` (TOML: `[[route]]` and `[plugin.NAME]` tables) under
    /// a config that listens on 127.0.0.1:0 and does not watch for
    /// reloads, and copies each `(name, wasm)` into its plugins dir.
    /// `cache`, when given, is shared by every site that names it.
    pub fn create(
        dir: &Path,
        plugins: &[(String, PathBuf)],
        routes: &str,
        cache: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::create_on(dir, plugins, routes, cache, None)
    }

    /// As [`Site::create`], with the store on the PostgreSQL database at
    /// `database` when given (several sites may share one).
    pub fn create_on(
        dir: &Path,
        plugins: &[(String, PathBuf)],
        routes: &str,
        cache: Option<&Path>,
        database: Option<&str>,
    ) -> anyhow::Result<Self> {
        let plugin_dir = dir.join("plugins");
        let data = dir.join("data");
        std::fs::create_dir_all(&plugin_dir)?;
        std::fs::create_dir_all(&data)?;
        for (name, wasm) in plugins {
            std::fs::copy(wasm, plugin_dir.join(format!("{name}.wasm")))
                .with_context(|| format!("copying {}", wasm.display()))?;
        }
        if let Some(cache) = cache {
            std::fs::create_dir_all(cache)?;
            let link = data.join("cache");
            if !link.exists() {
                std::os::unix::fs::symlink(cache, link)?;
            }
        }
        let config = dir.join("wirehook.toml");
        let backend = if database.is_some() {
            format!("backend = \"postgres\"\nurl = \"env:{DATABASE_URL_VAR}\"\n")
        } else {
            String::new()
        };
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\n{backend}path = {data:?}\n\n\
             [reload]\nwatch = false\n\n[plugins]\ndir = {plugin_dir:?}\n\n{routes}"
        );
        std::fs::write(&config, text)?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            database: database.map(str::to_owned),
        })
    }

    /// Events accepted but not yet delivered, read from the site's store
    /// (beside the running daemon, as `wirehook events` does).
    pub fn backlog(&self) -> anyhow::Result<u64> {
        use wirehook::store::Queue as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let Some(url) = &self.database else {
            let store = wirehook::store::SqliteStore::open(
                &self.dir.join("data"),
                wirehook::providers::redecode,
            )?;
            return Ok(runtime.block_on(store.depth())?);
        };
        runtime.block_on(async {
            let store = wirehook::store::PostgresStore::connect(
                url,
                Default::default(),
                1,
                30,
                wirehook::store::Role::Command,
                wirehook::providers::redecode,
            )
            .await?;
            Ok(store.depth().await?)
        })
    }

    /// Starts wirehook on this site and waits for its "listening" line.
    pub fn start(&self, wirehook: &Path) -> anyhow::Result<Running> {
        let mut command = Command::new(wirehook);
        command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env("BENCH_GOFLOW_TOKEN", GOFLOW_TOKEN)
            .env("BENCH_TRUORA_SECRET", TRUORA_SECRET)
            .env("BENCH_HMAC_SECRET", HMAC_SECRET)
            .env(ONEROUTE_SECRET_VAR, ONEROUTE_SECRET)
            .current_dir(&self.dir);
        if let Some(url) = &self.database {
            command.env(DATABASE_URL_VAR, url);
        }
        start_logged(command)
    }
}

/// Starts the bare-axum limit.
pub fn limit(binary: &Path) -> anyhow::Result<Running> {
    let mut command = Command::new(binary);
    command.arg("127.0.0.1:0");
    start_logged(command)
}

/// Starts the Express peer from `dir` (its `node_modules` installed)
/// with `workers` processes.
pub fn express(dir: &Path, workers: usize) -> anyhow::Result<Running> {
    let port = free_port()?;
    let mut command = Command::new("node");
    command
        .arg("server.js")
        .current_dir(dir)
        .env("PORT", port.to_string())
        .env("WORKERS", workers.to_string())
        .env("TOKEN", format!("Token {GOFLOW_TOKEN}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let mut child = command.spawn().context("starting node")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Express says nothing when it listens: ready is a connection accepted.
    while TcpStream::connect(addr).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("the Express peer exited before listening: {status}");
        }
        if started.elapsed() > READY_WAIT {
            let _ = child.kill();
            bail!("the Express peer did not listen on {addr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Running {
        child,
        addr,
        startup: started.elapsed(),
    })
}

/// Starts `command` with its stderr read for a JSON line
/// `{"message": "listening", "addr": ...}`; the rest of its log is read
/// and dropped, so that logging costs the target what it costs in use.
fn start_logged(mut command: Command) -> anyhow::Result<Running> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (lines, ready) = mpsc::channel::<Result<SocketAddr, String>>();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        let mut waiting = true;
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if waiting {
                let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                let listening = parsed
                    .as_ref()
                    .filter(|v| v["message"] == "listening")
                    .and_then(|v| v["addr"].as_str()?.parse().ok());
                let sent = match listening {
                    Some(addr) => {
                        waiting = false;
                        lines.send(Ok(addr))
                    }
                    None => lines.send(Err(line.trim_end().to_owned())),
                };
                if sent.is_err() {
                    waiting = false;
                }
            }
            line.clear();
        }
    });
    let mut log = Vec::new();
    loop {
        let left = READY_WAIT.saturating_sub(started.elapsed());
        match ready.recv_timeout(left) {
            Ok(Ok(addr)) => {
                return Ok(Running {
                    child,
                    addr,
                    startup: started.elapsed(),
                });
            }
            Ok(Err(line)) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = log[log.len().saturating_sub(20)..].join("\n");
                return Err(anyhow!(
                    "the target did not say it listens; its log:\n{tail}"
                ));
            }
        }
    }
}

/// A port nobody listens on now (the Express peer takes its port from
/// the environment, not from 0).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(parent))
        .collect()
}

/// The fields of `/proc/PID/stat` after "pid (comm)", from the state on:
/// the command may hold spaces and parens.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // The state is a letter; every field after it is a number.
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|field| field.parse().unwrap_or(0))
            .collect(),
    )
}

fn parent_of(pid: u32) -> Option<u32> {
    u32::try_from(*stat_fields(pid)?.first()?).ok()
}

/// CPU time process `pid` has used so far, user and system, to the clock
/// tick; `None` once it is gone.
pub fn cpu_time_of(pid: u32) -> Option<Duration> {
    Some(TICK * u32::try_from(cpu_ticks(pid)?).unwrap_or(u32::MAX))
}

/// utime + stime: fields 14 and 15 of `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    Some(fields.get(10)? + fields.get(11)?)
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_process_parent_and_cpu_time() {
        let me = std::process::id();
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
        // Burn CPU until the kernel counts a tick more: a field that does
        // not move with CPU time never gets there.
        let before = cpu_ticks(me).unwrap();
        let mut spins = 0u64;
        while cpu_ticks(me).unwrap() == before {
            spins += 1;
            assert!(spins < 100_000_000, "utime + stime never moved");
            std::hint::black_box((0..1000u64).sum::<u64>());
        }
        assert!(cpu_ticks(me).unwrap() > before);
    }
}
