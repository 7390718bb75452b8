//! Bounded waits for the tests: every wait has a deadline and, when it
//! passes, a panic saying what was waited for, so a regression fails the
//! test instead of hanging CI. The HTTP client the tests use lives here
//! too, since its timeout is one of those deadlines.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

/// How long a test waits for anything: a log line, a channel, a request,
/// a child process. Long enough for a busy 2-core machine, short enough
/// that a hang fails well inside CI's limit.
pub const WAIT: Duration = Duration::from_secs(60);

/// How long a wait that may compile plugins may take: with an empty
/// compilation cache the Python and JavaScript plugins take tens of
/// seconds each on a busy 2-core machine running the other tests.
pub const COMPILE_WAIT: Duration = Duration::from_secs(600);

/// How often [`eventually`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// Awaits `future`, or panics after [`WAIT`] naming `what` it waited for.
pub async fn within<T>(what: impl Display, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("waited {WAIT:?} for {what}"),
    }
}

/// Asks `check` until it answers `Some`, or panics after [`WAIT`] naming
/// `what` it waited for. For conditions nothing announces (a metric, a
/// file); each look is itself bounded.
pub async fn eventually<T, F>(what: impl Display, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Some(value)) = tokio::time::timeout(left, check()).await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("waited {WAIT:?} for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for a child process, killing it and panicking after `wait`.
pub fn child_exit(
    child: &mut std::process::Child,
    wait: Duration,
    what: impl Display,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("waited {wait:?} for {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `command` to the end with its output captured, killing it and
/// panicking if it takes longer than `wait`. Standard input is the
/// caller's to set (inherited otherwise).
pub fn output(command: &mut std::process::Command, wait: Duration) -> std::process::Output {
    use std::process::Stdio;
    let what = format!("{command:?} to exit");
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a command");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    // The reader thread owns the child; on a timeout it is killed by pid,
    // which ends its output and so the thread.
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(wait) {
        Ok(output) => output.expect("reading a command's output"),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("waited {wait:?} for {what}");
        }
    }
}

/// The HTTP client every test uses: a request that gets no answer fails
/// after [`WAIT`] instead of hanging.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("building the test HTTP client")
}

/// [`client`]'s settings, for a test that adds its own (TLS roots, ...).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(WAIT)
        .connect_timeout(Duration::from_secs(10))
}

/// Says on the terminal that `test` checked nothing, and why. Written to
/// the process's stderr directly: `cargo test` captures only the print
/// macros, so this shows even when the test passes.
pub fn skipped(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}
