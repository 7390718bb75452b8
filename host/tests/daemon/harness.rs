//! Starts the real `wirehook` binary on 127.0.0.1:0 with a config and the
//! compiled plugins a test names, and watches its JSON log. Every wait it
//! offers has a deadline; the secrets a test names are looked for in the
//! whole log when the daemon is dropped.

pub mod browser;
pub mod otlp;
pub mod postgres;
pub mod provider;
mod wait;

pub use wait::{COMPILE_WAIT, WAIT, client, client_builder, eventually, output, skipped, within};

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Pushed to the log when the daemon's stderr closes.
const CLOSED: &str = "(log closed)";

/// How long to wait for the daemon to log something before failing.
const LOG_WAIT: Duration = WAIT;

/// How long a SIGTERM may take: the shutdown grace (5 s by default) and
/// the store's last commit.
const EXIT_WAIT: Duration = Duration::from_secs(120);

/// How long a start may take: it may compile every plugin.
const START_WAIT: Duration = COMPILE_WAIT;

/// The workspace's target dir, where `plugins/build` also installs the
/// toolchains (under `toolchains/`).
/// Unix seconds: the clock providers' timestamps are checked against.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

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
    let target = target_dir();
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

/// A compilation cache the tests share (`[plugins] cache_dir`), so that a
/// large plugin is compiled once, not once per daemon.
pub fn shared_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache")
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
    child: Option<Child>,
    pub addr: SocketAddr,
    pub config: PathBuf,
    env: Vec<(String, String)>,
    /// Pass `--log-format json` (else the config must ask for JSON).
    json_flag: bool,
    /// How many times the daemon was started; its log spans every run.
    runs: usize,
    /// Values that must never appear in the log or a CLI's output.
    secrets: Vec<String>,
    _dir: tempfile::TempDir,
    log: Arc<Log>,
}

/// One `[[route]]` table of a test's config, built rather than written
/// out in TOML: `Route::hook("orders", "goflow").secret("env:T")
/// .plugins(&["order-status"]).respond()`. Its `Display` is the table.
#[derive(Debug, Clone)]
pub struct Route {
    keys: Vec<(String, String)>,
}

impl Route {
    pub fn new(name: &str, path: &str, provider: &str) -> Self {
        Self { keys: Vec::new() }
            .text("name", name)
            .text("path", path)
            .text("provider", provider)
    }

    /// A route `name` at `/hooks/NAME`.
    pub fn hook(name: &str, provider: &str) -> Self {
        Self::new(name, &format!("/hooks/{name}"), provider)
    }

    /// `secret`: the value itself, `env:VAR` or `file:PATH`.
    pub fn secret(self, value: &str) -> Self {
        self.text("secret", value)
    }

    pub fn plugins(self, names: &[&str]) -> Self {
        self.value("plugins", &format!("{names:?}"))
    }

    /// `queue` or `respond`.
    pub fn mode(self, mode: &str) -> Self {
        self.text("mode", mode)
    }

    /// `respond`: the plugins answer the request.
    pub fn respond(self) -> Self {
        self.mode("respond")
    }

    /// `queue`: the request is acknowledged once stored.
    pub fn queue(self) -> Self {
        self.mode("queue")
    }

    /// Any other key, with a string value.
    pub fn text(self, key: &str, value: &str) -> Self {
        self.value(key, &format!("{value:?}"))
    }

    /// Any other key, with its value written in TOML.
    pub fn value(mut self, key: &str, toml: &str) -> Self {
        self.keys.push((key.to_owned(), toml.to_owned()));
        self
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[[route]]")?;
        for (key, value) in &self.keys {
            writeln!(f, "{key} = {value}")?;
        }
        Ok(())
    }
}

/// A daemon to start: the TOML given to [`DaemonBuilder::new`] (tables
/// such as `[plugin.*]`, `[delivery]`, `[reload]`), then each
/// [`DaemonBuilder::route`]; `[server]`, `[storage]` and `[plugins]`
/// point into a temp dir.
pub struct DaemonBuilder {
    routes: String,
    plugins: Vec<(String, PathBuf)>,
    env: Vec<(String, String)>,
    plugins_table: String,
    server_table: String,
    storage_table: String,
    json_flag: bool,
    listen: String,
    secrets: Vec<String>,
}

impl DaemonBuilder {
    pub fn new(routes: &str) -> Self {
        Self {
            routes: routes.to_owned(),
            plugins: Vec::new(),
            env: Vec::new(),
            plugins_table: String::new(),
            server_table: String::new(),
            storage_table: String::new(),
            json_flag: true,
            listen: "127.0.0.1:0".to_owned(),
            secrets: Vec::new(),
        }
    }

    /// A `[[route]]` table after the TOML given to [`DaemonBuilder::new`].
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push_str(&format!("\n{route}"));
        self
    }

    pub fn plugin(self, name: &str) -> Self {
        let wasm = plugin_wasm(name);
        self.plugin_file(name, &wasm)
    }

    /// A plugin built elsewhere, loaded as `name`.
    pub fn plugin_file(mut self, name: &str, wasm: &Path) -> Self {
        self.plugins.push((name.to_owned(), wasm.to_owned()));
        self
    }

    /// An environment variable for the daemon and its CLI. A value of
    /// four characters or more under a name that says TOKEN, SECRET or
    /// KEY is a secret: see [`DaemonBuilder::secret`].
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let named = ["TOKEN", "SECRET", "KEY"].iter().any(|w| key.contains(w));
        if named && value.len() >= 4 {
            self.secrets.push(value.to_owned());
        }
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A value that must never appear in the daemon's log (checked over
    /// the whole log when the daemon is dropped) or in the output of a
    /// CLI run through [`Daemon::cli`].
    pub fn secret(mut self, value: &str) -> Self {
        self.secrets.push(value.to_owned());
        self
    }

    /// Extra keys of the `[plugins]` table.
    pub fn plugins_settings(mut self, toml: &str) -> Self {
        self.plugins_table = toml.to_owned();
        self
    }

    /// Leaves `--log-format` off: the routes' TOML sets `[log]`.
    pub fn log_format_from_config(mut self) -> Self {
        self.json_flag = false;
        self
    }

    /// Extra keys of the `[server]` table.
    pub fn server_settings(mut self, toml: &str) -> Self {
        self.server_table = toml.to_owned();
        self
    }

    /// Extra keys of the `[storage]` table.
    pub fn storage_settings(mut self, toml: &str) -> Self {
        self.storage_table = toml.to_owned();
        self
    }

    /// The `[server] listen` address (`127.0.0.1:0` unless set), e.g.
    /// `[::]:0` for a dual-stack listener.
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_owned();
        self
    }

    pub fn start(self) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let plugins_dir = dir.path().join("plugins");
        std::fs::create_dir(&plugins_dir).unwrap();
        for (name, wasm) in &self.plugins {
            std::fs::copy(wasm, plugins_dir.join(format!("{name}.wasm"))).unwrap();
        }
        let config = format!(
            "[server]\nlisten = {:?}\n{}\n\n[storage]\npath = {:?}\n{}\n\n[plugins]\ndir = {:?}\n{}\n\n{}",
            self.listen,
            self.server_table,
            dir.path().join("data"),
            self.storage_table,
            plugins_dir,
            self.plugins_table,
            self.routes
        );
        let config_path = dir.path().join("wirehook.toml");
        std::fs::write(&config_path, config).unwrap();

        let mut daemon = Daemon {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            config: config_path,
            env: self.env,
            json_flag: self.json_flag,
            runs: 0,
            secrets: self.secrets,
            _dir: dir,
            log: Arc::new(Log::default()),
        };
        daemon.spawn();
        daemon
    }
}

impl Daemon {
    /// Starts (or restarts) the daemon on the same config and store, and
    /// waits until it listens.
    pub fn spawn(&mut self) {
        let mut command = wirehook();
        if self.json_flag {
            command.args(["--log-format", "json"]);
        }
        command
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "wirehook=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting wirehook");
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "message": line }));
                // A test that failed while holding the lock poisoned it;
                // the lines still go on being read.
                let mut lines = log.lines.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(value);
                drop(lines);
                log.grew.notify_all();
            }
            // EOF: wake waiters so they notice the exit.
            log.lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(serde_json::json!({ "message": CLOSED }));
            log.grew.notify_all();
        });
        self.child = Some(child);
        self.runs += 1;
        let listening =
            self.wait_within(START_WAIT, self.runs, |line| line["message"] == "listening");
        self.addr = listening["addr"].as_str().unwrap().parse().unwrap();
    }

    /// `kill -9`: no chance to flush or finish anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        child.kill().unwrap();
        wait::child_exit(&mut child, LOG_WAIT, "the daemon to die of SIGKILL");
        self.wait_for_nth(self.runs, |l| l["message"] == CLOSED);
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Waits for the daemon to exit (after a signal sent with
    /// [`Daemon::signal`]) and for its log to end.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        let exit = wait::child_exit(&mut child, EXIT_WAIT, "the daemon to exit");
        self.wait_for_nth(self.runs, |l| l["message"] == CLOSED);
        exit
    }

    /// The directory the daemon loads plugins from.
    pub fn plugins_dir(&self) -> PathBuf {
        self.config.parent().unwrap().join("plugins")
    }

    /// Replaces `path` the way an editor or deploy script should: write a
    /// temporary file beside it, then rename over it.
    pub fn replace_file(&self, path: &Path, contents: &[u8]) {
        let temp = path.with_extension("partial");
        std::fs::write(&temp, contents).unwrap();
        std::fs::rename(&temp, path).unwrap();
    }

    /// Rewrites the config file with `edit` applied.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let config = std::fs::read_to_string(&self.config).unwrap();
        self.replace_file(&self.config, edit(config).as_bytes());
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the running daemon.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("daemon running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Runs a wirehook subcommand against this daemon's config. Its
    /// output must not hold a secret.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = wirehook();
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "off")
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = wait::output(&mut command, WAIT);
        for text in [&output.stdout, &output.stderr] {
            let text = String::from_utf8_lossy(text);
            self.assert_no_secret(&format!("the output of {args:?}"), &text);
        }
        output
    }

    /// Panics if `text` holds one of the daemon's secrets, naming where
    /// (never the secret).
    pub fn assert_no_secret(&self, place: &str, text: &str) {
        for (n, secret) in self.secrets.iter().enumerate() {
            assert!(
                !text.contains(secret.as_str()),
                "secret #{n} of this test appears in {place}"
            );
        }
    }

    /// Stops the daemon, reads its log to the end and checks that no
    /// secret appears anywhere in it.
    fn check_whole_log(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            wait::child_exit(&mut child, LOG_WAIT, "the daemon to die of SIGKILL");
            self.wait_for_nth(self.runs, |l| l["message"] == CLOSED);
        }
        let lines = self.log.lines.lock().unwrap();
        for (n, line) in lines.iter().enumerate() {
            self.assert_no_secret(&format!("log line {n}"), &line.to_string());
        }
    }

    /// Runs a wirehook subcommand that prints JSON lines, and parses them.
    pub fn cli_json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let output = self.cli(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits until `done` holds for the whole log so far.
    pub fn wait_until(&self, done: impl Fn(&[serde_json::Value]) -> bool) {
        let mut lines = self.log.lines.lock().unwrap();
        let deadline = std::time::Instant::now() + LOG_WAIT;
        while !done(&lines) {
            let now = std::time::Instant::now();
            if now >= deadline {
                let tail: Vec<String> =
                    lines.iter().rev().take(50).map(|l| l.to_string()).collect();
                panic!(
                    "condition not reached; last log lines:\n{}",
                    tail.join("\n")
                );
            }
            lines = self.log.grew.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

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
        self.wait_within(LOG_WAIT, n, matches)
    }

    /// [`Daemon::wait_for_nth`] with a deadline of `wait`, for what the
    /// daemon does on a timer of its own longer than [`WAIT`].
    pub fn wait_within(
        &self,
        wait: Duration,
        n: usize,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut lines = self.log.lines.lock().unwrap();
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(line) = lines.iter().filter(|l| matches(l)).nth(n - 1) {
                return line.clone();
            }
            // Closed: the current run's stderr has ended.
            let closed = lines.iter().filter(|l| l["message"] == CLOSED).count() >= self.runs;
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

    /// How many plugin calls the daemon has logged for `route` so far.
    /// Lines arrive in order: once a later line was seen, so were these.
    pub fn plugin_calls(&self, route: &str) -> usize {
        self.log_lines(|l| is_plugin_call(l, route)).len()
    }

    /// Waits until the daemon has logged `n` plugin calls for `route`.
    pub fn wait_plugin_calls(&self, route: &str, n: usize) {
        self.wait_for_nth(n, |l| is_plugin_call(l, route));
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
        if std::thread::panicking() {
            if let Some(child) = &mut self.child {
                let _ = child.kill();
                let _ = child.wait();
            }
            return;
        }
        self.check_whole_log();
    }
}

fn is_plugin_call(line: &serde_json::Value, route: &str) -> bool {
    line["route"] == route
        && (line["message"] == "plugin handled event" || line["message"] == "plugin failed event")
}

/// The raw stderr of a daemon writing the human log format, one string a
/// line (invalid UTF-8 replaced), for tests of what that format writes.
#[derive(Clone, Default)]
pub struct HumanLog(Arc<(Mutex<Vec<String>>, Condvar)>);

impl HumanLog {
    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits until a line matches, and returns it; panics with the whole
    /// log when none does in time or stderr closes.
    pub fn wait_for(&self, matches: impl Fn(&str) -> bool) -> String {
        let (lines, grew) = &*self.0;
        let mut lines = lines.lock().unwrap();
        let deadline = std::time::Instant::now() + LOG_WAIT;
        loop {
            if let Some(line) = lines.iter().find(|l| matches(l)) {
                return line.clone();
            }
            let now = std::time::Instant::now();
            if now >= deadline || lines.last().is_some_and(|l| l == CLOSED) {
                panic!("expected log line not seen; log:\n{}", lines.join("\n"));
            }
            lines = grew.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }
}

impl Daemon {
    /// Stops the daemon and starts it again on the same config and store,
    /// writing the human log format to a pipe (so not a terminal) with
    /// `NO_COLOR` unset; waits until it listens. Its log is the returned
    /// one, not the JSON log: stop it by dropping the daemon.
    pub fn restart_human(&mut self) -> HumanLog {
        self.terminate();
        let mut command = wirehook();
        command
            .args(["--log-format", "human", "run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "wirehook=debug")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting wirehook");
        let stderr = child.stderr.take().unwrap();
        self.child = Some(child);
        let log = HumanLog::default();
        let shared = log.clone();
        std::thread::spawn(move || {
            let (lines, grew) = &*shared.0;
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                lines.lock().unwrap().push(line);
                grew.notify_all();
            }
            lines.lock().unwrap().push(CLOSED.to_owned());
            grew.notify_all();
        });
        let listening = log.wait_for(|l| l.contains(" listening "));
        // The value after `addr=`, whatever styling the line has.
        let mut rest = listening
            .split_once("addr")
            .and_then(|(_, rest)| rest.split_once('='))
            .map_or("", |(_, rest)| rest);
        while let Some(styled) = rest.strip_prefix("\x1b[") {
            rest = styled.split_once('m').map_or("", |(_, rest)| rest);
        }
        let addr = rest.split([' ', '\x1b']).next().unwrap_or_default();
        self.addr = addr
            .parse()
            .unwrap_or_else(|_| panic!("no address in {listening:?}"));
        log
    }
}

impl Daemon {
    /// Lowers the running daemon's open-file limit, soft and hard, to
    /// `files`, as `LimitNOFILE=` or `ulimit -n` would: every descriptor it
    /// opens from then on counts against it.
    pub fn limit_open_files(&self, files: u64) {
        let child = self.child.as_ref().expect("daemon running");
        let status = Command::new("prlimit")
            .arg(format!("--pid={}", child.id()))
            .arg(format!("--nofile={files}:{files}"))
            .status()
            .expect("running prlimit");
        assert!(status.success(), "prlimit failed");
    }
}
