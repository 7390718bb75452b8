//! Starts the real `wirehook` binary on 127.0.0.1:0 with a config and the
//! compiled plugins a test names, and watches its JSON log.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long to wait for the daemon to log something before failing.
const LOG_WAIT: Duration = Duration::from_secs(60);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A compiled plugin: shipped examples from `plugins/dist`, test fixtures
/// from `target/test-plugins` (both built by `plugins/build --test`).
pub fn plugin_wasm(name: &str) -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let candidates = [
        root.join("plugins/dist").join(format!("{name}.wasm")),
        target.join("test-plugins").join(format!("{name}.wasm")),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("plugin `{name}` is not built: run `plugins/build --test` first"))
}

pub fn wirehook() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wirehook"))
}

/// The daemon's log lines, shared with the thread that reads them.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<serde_json::Value>>,
    grew: Condvar,
}

pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    log: Arc<Log>,
}

/// A daemon to start: `routes` is TOML for `[[route]]` and `[plugin.*]`
/// tables; `[server]`, `[storage]` and `[plugins]` point into a temp dir.
pub struct DaemonBuilder {
    routes: String,
    plugins: Vec<String>,
    env: Vec<(String, String)>,
    plugins_table: String,
    server_table: String,
}

impl DaemonBuilder {
    pub fn new(routes: &str) -> Self {
        Self {
            routes: routes.to_owned(),
            plugins: Vec::new(),
            env: Vec::new(),
            plugins_table: String::new(),
            server_table: String::new(),
        }
    }

    pub fn plugin(mut self, name: &str) -> Self {
        self.plugins.push(name.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Extra keys of the `[plugins]` table.
    pub fn plugins_settings(mut self, toml: &str) -> Self {
        self.plugins_table = toml.to_owned();
        self
    }

    /// Extra keys of the `[server]` table.
    pub fn server_settings(mut self, toml: &str) -> Self {
        self.server_table = toml.to_owned();
        self
    }

    pub fn start(self) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugins_dir).unwrap();
        for name in &self.plugins {
            std::fs::copy(plugin_wasm(name), plugins_dir.join(format!("{name}.wasm"))).unwrap();
        }
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{}\n\n[storage]\npath = {:?}\n\n[plugins]\ndir = {:?}\n{}\n\n{}",
            self.server_table,
            dir.path().join("data"),
            plugins_dir,
            self.plugins_table,
            self.routes
        );
        let config_path = dir.path().join("wirehook.toml");
        std::fs::write(&config_path, config).unwrap();

        let mut command = wirehook();
        command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "wirehook=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting wirehook");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().unwrap();
        let reader_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "message": line }));
                reader_log.lines.lock().unwrap().push(value);
                reader_log.grew.notify_all();
            }
            // EOF: wake waiters so they notice the exit.
            reader_log
                .lines
                .lock()
                .unwrap()
                .push(serde_json::json!({ "message": "(log closed)" }));
            reader_log.grew.notify_all();
        });
        let mut daemon = Daemon {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            _dir: dir,
            log,
        };
        let listening = daemon.wait_for_log(|line| line["message"] == "listening");
        daemon.addr = listening["addr"].as_str().unwrap().parse().unwrap();
        daemon
    }
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until a log line matches, and returns it. Panics with the
    /// whole log if the daemon exits or nothing matches in time.
    pub fn wait_for_log(&self, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.wait_for_nth(1, matches)
    }

    /// Waits until `n` log lines match, and returns the `n`th.
    pub fn wait_for_nth(
        &self,
        n: usize,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut lines = self.log.lines.lock().unwrap();
        let deadline = std::time::Instant::now() + LOG_WAIT;
        loop {
            if let Some(line) = lines.iter().filter(|l| matches(l)).nth(n - 1) {
                return line.clone();
            }
            let closed = lines.last().is_some_and(|l| l["message"] == "(log closed)");
            let now = std::time::Instant::now();
            if closed || now >= deadline {
                let all: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                panic!("expected log line not seen; log:\n{}", all.join("\n"));
            }
            lines = self.log.grew.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    /// Log lines matching `matches`, as seen so far.
    pub fn log_lines(
        &self,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let lines = self.log.lines.lock().unwrap();
        lines.iter().filter(|l| matches(l)).cloned().collect()
    }

    /// How many plugin calls the daemon has logged for `route`.
    pub fn plugin_calls(&self, route: &str) -> usize {
        self.log_lines(|l| {
            l["route"] == route
                && (l["message"] == "plugin handled event" || l["message"] == "plugin failed event")
        })
        .len()
    }

    /// Waits for the `n`th refusal log line of `route`.
    pub fn wait_refused(&self, route: &str, n: usize) -> serde_json::Value {
        self.wait_for_nth(n, |l| {
            l["message"] == "request refused" && l["route"] == route
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
