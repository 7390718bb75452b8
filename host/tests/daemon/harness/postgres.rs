//! A private PostgreSQL server for one test: a copy of a cluster made once
//! with `initdb` (kept in the target dir), started with `pg_ctl` on a unix
//! socket in a temporary directory, no TCP, and stopped when dropped.
//! PostgreSQL refuses to run as root, so as root (CI) the server runs as
//! `nobody`. Used by the daemon tests and, through `#[path]`, by the
//! store's conformance suite.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server; stopped (immediately) when dropped.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// Where PostgreSQL's server programs are, if it is installed.
pub fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("initdb"))
            .find(|initdb| initdb.is_file())
    });
    if let Some(initdb) = on_path {
        let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        return initdb.parent().map(Path::to_owned);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `program` in `bin`, run as `nobody` when this process is root.
fn command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn give_to_server(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(path)
            .status()
            .expect("running chown");
        assert!(status.success(), "chown {} failed", path.display());
    }
}

fn run(mut command: Command) {
    let output = command.output().expect("running a PostgreSQL program");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The cluster every server copies, made once (by whichever test gets
/// there first; the others find it whole, as it is renamed into place).
fn template(bin: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let template = target.join("pg-template");
    if template.join("PG_VERSION").is_file() {
        return template;
    }
    let building = tempfile::Builder::new()
        .prefix("pg-template.")
        .tempdir_in(&target)
        .expect("making the template's directory");
    give_to_server(building.path());
    let data = building.path().join("data");
    let mut initdb = command(bin, "initdb");
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]);
    run(initdb);
    // Another test may have renamed its own into place first: either is whole.
    let _ = std::fs::rename(&data, &template);
    template
}

impl PgServer {
    /// Starts a server for `test`, or reports the test skipped and returns
    /// `None` when PostgreSQL is not installed, unless `REQUIRE_POSTGRES=1`.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "REQUIRE_POSTGRES=1 but PostgreSQL (initdb) is not installed"
            );
            eprintln!("SKIPPED {test}: PostgreSQL (initdb) is not installed");
            return None;
        };
        let template = template(&bin);
        let dir = tempfile::Builder::new()
            .prefix("wirehook-pg.")
            .tempdir()
            .expect("making the server's directory");
        let mut copy = Command::new("cp");
        copy.arg("-a").arg(&template).arg(dir.path().join("data"));
        run(copy);
        give_to_server(dir.path());
        let server = Self { bin, dir };
        server.resume();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The connection string, in key=value form: the socket directory and
    /// the database.
    pub fn url(&self) -> String {
        format!(
            "host={} port=5432 user=postgres dbname=postgres",
            self.dir.path().display()
        )
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-k {} -p 5432 -c listen_addresses= -c fsync=off -c max_connections=200",
            self.dir.path().display()
        );
        let mut start = command(&self.bin, "pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        run(start);
    }

    /// Stops the server at once, as a crash would (its WAL brings back
    /// every commit at the next start).
    pub fn stop(&self) {
        let mut stop = command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "60", "stop"]);
        run(stop);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = command(&self.bin, "pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "60", "stop"]);
        let _ = stop.output();
    }
}
