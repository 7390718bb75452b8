//! Ahead-of-time compilation: `wirehook compile` writes an artifact
//! beside each plugin, a start loads it instead of compiling, and an
//! artifact that no longer matches the component or the engine is
//! ignored (with a log line), the component compiled as usual.

use std::path::Path;

use serde_json::{Value, json};

use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route, WAIT, output, wirehook};

const TOKEN: &str = "aot-token-51c2";

fn daemon() -> Daemon {
    DaemonBuilder::new("")
        .route(
            Route::hook("orders", "goflow")
                .secret("env:TEST_GOFLOW_TOKEN")
                .plugins(&["order-status"])
                .respond(),
        )
        .plugin("order-status")
        .env("TEST_GOFLOW_TOKEN", TOKEN)
        .start()
}

/// Runs `wirehook compile` on the daemon's plugins dir; its output.
fn compile(daemon: &Daemon) -> String {
    let out = output(
        wirehook()
            .arg("compile")
            .arg(daemon.plugins_dir())
            .env("RUST_LOG", "off"),
        WAIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    stdout
}

/// The `listening` line of the daemon's `run`th start.
fn listening(daemon: &Daemon, run: usize) -> Value {
    daemon.wait_for_nth(run, |l| l["message"] == "listening")
}

/// Restarts the daemon and checks it still answers from order-status.
async fn restart_and_ask(daemon: &mut Daemon) {
    daemon.terminate();
    daemon.spawn();
    let response = crate::harness::client()
        .post(daemon.url("/hooks/orders"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply, json!({"number": "CU001", "status": "Shipped"}));
}

/// The warning naming why the artifact was ignored, the `n`th such.
fn ignored(daemon: &Daemon, n: usize) -> String {
    let line = daemon.wait_for_nth(n, |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("precompiled artifact ignored"))
    });
    assert!(
        line["artifact"]
            .as_str()
            .is_some_and(|a| a.ends_with("order-status.cwasm")),
        "{line}"
    );
    line["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_fresh_artifact_is_loaded_without_compiling() {
    let mut daemon = daemon();
    assert_eq!(listening(&daemon, 1)["precompiled"], 0);

    let stdout = compile(&daemon);
    assert!(
        stdout.contains("order-status.cwasm: compiled in"),
        "{stdout}"
    );
    assert!(daemon.plugins_dir().join("order-status.cwasm").is_file());
    // A second run finds it fresh and writes nothing.
    assert!(compile(&daemon).contains("order-status.cwasm: up to date"));

    restart_and_ask(&mut daemon).await;
    assert_eq!(listening(&daemon, 2)["precompiled"], 1);
    let loaded = daemon.wait_for_nth(2, |l| {
        l["message"] == "plugin loaded" && l["plugin"] == "order-status"
    });
    assert_eq!(loaded["precompiled"], true, "{loaded}");
}

#[tokio::test]
async fn a_stale_artifact_is_ignored_not_loaded() {
    let mut daemon = daemon();
    compile(&daemon);
    let wasm = daemon.plugins_dir().join("order-status.wasm");
    let artifact = daemon.plugins_dir().join("order-status.cwasm");

    // The component changes (an empty custom section appended: other
    // bytes, the same plugin); its artifact is of the old one.
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(b"\x00\x02\x01x");
    std::fs::write(&wasm, &bytes).unwrap();
    restart_and_ask(&mut daemon).await;
    let reason = ignored(&daemon, 1);
    assert!(reason.contains("the component changed"), "{reason}");
    assert_eq!(listening(&daemon, 2)["precompiled"], 0);

    // Compiled again, then as if by another wasmtime, other settings or
    // another CPU: the trailer's engine digest differs from this engine's.
    assert!(compile(&daemon).contains("order-status.cwasm: compiled in"));
    rewrite_engine_line(&artifact);
    restart_and_ask(&mut daemon).await;
    let reason = ignored(&daemon, 2);
    assert!(reason.contains("compiled by another engine"), "{reason}");
    assert_eq!(listening(&daemon, 3)["precompiled"], 0);

    // Writable by others: never loaded, whatever its trailer says.
    compile(&daemon);
    set_mode(&artifact, 0o666);
    restart_and_ask(&mut daemon).await;
    let reason = ignored(&daemon, 3);
    assert!(reason.contains("others may write it"), "{reason}");
    assert_eq!(listening(&daemon, 4)["precompiled"], 0);
}

/// Replaces the hex digest on the trailer's `engine` line with another.
fn rewrite_engine_line(artifact: &Path) {
    let mut bytes = std::fs::read(artifact).unwrap();
    let at = bytes
        .windows(8)
        .rposition(|w| w == b"\nengine ")
        .expect("an engine line")
        + 8;
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(artifact, &bytes).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
