//! A newcomer's first run: `wirehook init` writes a config that `check`
//! passes for every provider, and `wirehook run` on it prints one ready
//! line and serves.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;

use crate::harness::{COMPILE_WAIT, WAIT, output, wirehook};

/// A value every init route's secret accepts: a Standard Webhooks
/// `whsec_` secret is a token to the others.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Runs `wirehook init DIR --provider PROVIDERS`; its standard output.
fn init(dir: &Path, providers: &str) -> String {
    let out = output(
        wirehook()
            .arg("init")
            .arg(dir)
            .args(["--provider", providers])
            .env("RUST_LOG", "off"),
        WAIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    stdout
}

/// The variables of the `export` line init printed.
fn exported(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("export "))
        .unwrap_or_else(|| panic!("no export line in {stdout}"));
    line.split(' ')
        .filter_map(|word| word.split_once("='").map(|(var, _)| var.to_owned()))
        .collect()
}

fn check(config: &Path, vars: &[String]) -> std::process::Output {
    let mut command = wirehook();
    command
        .args(["check", "--config"])
        .arg(config)
        .env("RUST_LOG", "off");
    for var in vars {
        command.env(var, SECRET);
    }
    output(&mut command, WAIT)
}

#[test]
fn init_writes_a_config_check_passes_for_every_provider() {
    let providers: Vec<&str> = wirehook::config::provider::ProviderId::ALL
        .map(|id| id.as_str())
        .to_vec();
    for provider in providers.iter().copied().chain([&*providers.join(",")]) {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        let stdout = init(&site, provider);
        let config = site.join("wirehook.toml");
        let shown = config.display().to_string();
        assert!(
            stdout.contains(&format!("wirehook check --config {shown}"))
                && stdout.contains(&format!("wirehook run --config {shown}")),
            "{stdout}"
        );
        let vars = exported(&stdout);
        assert!(!vars.is_empty(), "{stdout}");

        let passed = check(&config, &vars);
        let out = String::from_utf8_lossy(&passed.stdout);
        let routes = provider.split(',').count();
        assert!(passed.status.success(), "{provider}: {out}");
        assert!(
            out.contains(&format!("ok ({routes} routes, 0 plugins)")),
            "{provider}: {out}"
        );

        // Without the secrets init named, check fails naming them.
        let failed = check(&config, &[]);
        let out = String::from_utf8_lossy(&failed.stdout);
        assert!(!failed.status.success(), "{provider}: {out}");
        assert!(out.contains(&vars[0]), "{provider}: {out}");
    }
}

#[test]
fn init_never_overwrites_a_config() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "goflow");
    let config = dir.path().join("wirehook.toml");
    std::fs::write(&config, "# mine\n").unwrap();
    let again = output(wirehook().arg("init").arg(dir.path()), WAIT);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");

    let unknown = output(
        wirehook()
            .args(["init", "--provider", "goflow,nope"])
            .arg(dir.path().join("other")),
        WAIT,
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("unknown provider `nope`"), "{stderr}");
    assert!(!dir.path().join("other/wirehook.toml").exists());
}

/// Kills the daemon however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_init_config_runs_and_prints_one_ready_line() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = init(dir.path(), "goflow");
    let vars = exported(&stdout);
    let mut command = wirehook();
    command
        .args(["run", "--config"])
        .arg(dir.path().join("wirehook.toml"))
        .env("WIREHOOK_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for var in &vars {
        command.env(var, SECRET);
    }
    let mut daemon = Running(command.spawn().unwrap());
    let lines = daemon.0.stdout.take().unwrap();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(lines).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let ready = receive
        .recv_timeout(COMPILE_WAIT)
        .expect("a ready line on standard output");
    assert!(ready.starts_with("wirehook ready in "), "{ready}");
    assert!(
        ready.contains(
            "routes /hooks/goflow (goflow, queue: no plugins); plugins none (0 precompiled)"
        ),
        "{ready}"
    );
    // `… on http://ADDR: routes …`
    let addr = ready
        .split_once(" on http://")
        .and_then(|(_, rest)| rest.split_once(": "))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("no address in {ready}"));

    let response = crate::harness::client()
        .post(format!("http://{addr}/hooks/goflow"))
        .header("Authorization", format!("Token {SECRET}"))
        .json(&crate::goflow::call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    drop(daemon);
}
