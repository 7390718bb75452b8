//! What an operator does to a running daemon, and what it must survive:
//! plugins replaced without a change of size or time, stray files in the
//! plugins dir, a config swapped by symlink, start-only keys changed on
//! reload, a route renamed while events are queued for it, and a store
//! created under a permissive umask.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route, plugin_wasm, wirehook};

/// A respond route `name` to `plugin`, behind the token `the-token`.
fn route(name: &str, plugin: &str) -> Route {
    Route::hook(name, "goflow")
        .secret("the-token")
        .plugins(&[plugin])
        .respond()
}

/// The `orders` route, reloaded 50 ms after its config changes.
fn orders() -> DaemonBuilder {
    DaemonBuilder::new("[reload]\ndebounce_ms = 50\n").route(route("orders", "order-status"))
}

async fn order(daemon: &Daemon, path: &str, token: &str) -> (u16, Value) {
    let response = crate::harness::client()
        .post(daemon.url(path))
        .header("Authorization", format!("Token {token}"))
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The probe echoes the event it was given; order-status does not.
fn is_probe(reply: &Value) -> bool {
    reply["payload"]["type"] == "flow-call"
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `wasm` with a custom section appended that makes it `len` bytes long.
fn padded_to(wasm: &[u8], len: usize) -> Vec<u8> {
    let grow = len - wasm.len();
    for size_bytes in 1..=5 {
        // id, the section's size, then its name ("p", with its length).
        let Some(content) = grow.checked_sub(1 + size_bytes) else {
            continue;
        };
        let Some(filler) = content.checked_sub(2) else {
            continue;
        };
        if leb128(content).len() != size_bytes {
            continue;
        }
        let mut out = wasm.to_vec();
        out.push(0);
        out.extend(leb128(content));
        out.extend([1, b'p']);
        out.extend(std::iter::repeat_n(0, filler));
        assert_eq!(out.len(), len);
        return out;
    }
    panic!("cannot pad {} bytes to {len}", wasm.len());
}

#[tokio::test]
async fn a_plugin_replaced_by_one_of_the_same_size_and_time_is_reloaded() {
    let probe = std::fs::read(plugin_wasm("probe")).unwrap();
    let order_status = std::fs::read(plugin_wasm("order-status")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let padded = scratch.path().join("order-status.wasm");
    std::fs::write(&padded, padded_to(&order_status, probe.len())).unwrap();
    let daemon = orders().plugin_file("order-status", &padded).start();
    let (status, reply) = order(&daemon, "/hooks/orders", "the-token").await;
    assert_eq!(status, 200);
    assert!(!is_probe(&reply), "{reply}");

    // As `cp -p` or `rsync -t` would: other bytes, same size and time.
    let target = daemon.plugins_dir().join("order-status.wasm");
    let modified = std::fs::metadata(&target).unwrap().modified().unwrap();
    let temp = target.with_extension("partial");
    std::fs::write(&temp, &probe).unwrap();
    let file = std::fs::File::options().write(true).open(&temp).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    std::fs::rename(&temp, &target).unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(
        (meta.len(), meta.modified().unwrap()),
        (probe.len() as u64, modified)
    );

    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let (status, reply) = order(&daemon, "/hooks/orders", "the-token").await;
    assert_eq!(status, 200);
    assert!(is_probe(&reply), "the old plugin still answers: {reply}");
}

fn unused_line(daemon: &Daemon, n: usize) -> String {
    daemon.wait_for_nth(n, |l| {
        l["message"] == "present in the plugins dir but unused: not loaded"
    })["plugins"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn unused_plugins_are_not_compiled_until_a_route_names_them() {
    let scratch = tempfile::tempdir().unwrap();
    let junk = scratch.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm this is not a component").unwrap();
    // A broken file nothing uses does not fail the start.
    let daemon = orders()
        .plugin("order-status")
        .plugin("probe")
        .plugin_file("junk", &junk)
        .start();
    let unused = unused_line(&daemon, 1);
    assert!(
        unused.contains("junk") && unused.contains("probe"),
        "{unused}"
    );
    let loaded = |name: &str| {
        daemon
            .log_lines(|l| l["message"] == "plugin loaded" && l["plugin"] == name)
            .len()
    };
    assert_eq!(loaded("order-status"), 1);
    assert_eq!(loaded("probe"), 0, "an unused plugin was compiled at start");

    // Nor a reload; and a plugin a route starts to name is loaded then.
    daemon.edit_config(|c| format!("{c}\n{}", route("probed", "probe")));
    daemon.wait_for_log(|l| l["message"] == "reloaded" && l["routes"] == 2);
    assert_eq!(loaded("probe"), 1);
    let unused = unused_line(&daemon, 2);
    assert!(
        unused.contains("junk") && !unused.contains("probe"),
        "{unused}"
    );
    let (status, reply) = order(&daemon, "/hooks/probed", "the-token").await;
    assert_eq!(status, 200);
    assert!(is_probe(&reply), "{reply}");
    // And `check` lists what is unused.
    let checked = daemon.cli(&["check"]);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{checked:?}");
    assert!(stdout.contains("unused: plugin `junk`"), "{stdout}");
}

#[tokio::test]
async fn fetch_settings_changed_on_reload_say_they_need_a_restart() {
    let daemon = orders().plugin("order-status").start();
    daemon.edit_config(|c| {
        c.replace(
            "[plugins]\n",
            "[plugins]\nfetch_timeout_ms = 1234\nfetch_max_response_bytes = 4321\n",
        )
    });
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    for key in [
        "plugins.fetch_timeout_ms",
        "plugins.fetch_max_response_bytes",
    ] {
        let line = daemon.wait_for_log(|l| l["key"] == key);
        assert_eq!(
            line["message"],
            format!("{key} changed: the change needs a restart")
        );
    }
}

#[tokio::test]
async fn a_config_swapped_by_symlink_is_reloaded() {
    let daemon = orders().plugin("order-status").start();
    // Laid out as Kubernetes mounts a ConfigMap: wirehook.toml ->
    // ..data/wirehook.toml, ..data -> a directory per version.
    let dir = daemon.config.parent().unwrap().to_owned();
    let version = |name: &str, config: &str| {
        std::fs::create_dir(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("wirehook.toml"), config).unwrap();
    };
    let swap = |link: &Path, target: &str| {
        let name = link.file_name().unwrap().to_str().unwrap();
        let temp = link.with_file_name(format!("{name}_tmp"));
        std::os::unix::fs::symlink(target, &temp).unwrap();
        std::fs::rename(&temp, link).unwrap();
    };
    let first = std::fs::read_to_string(&daemon.config).unwrap();
    version("..v1", &first);
    swap(&dir.join("..data"), "..v1");
    swap(&daemon.config, "..data/wirehook.toml");
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    assert_eq!(order(&daemon, "/hooks/orders", "the-token").await.0, 200);

    // The update: a new version dir, then `..data` swapped to it. No
    // event names wirehook.toml.
    version("..v2", &first.replace("the-token", "new-token"));
    swap(&dir.join("..data"), "..v2");
    daemon.wait_for_nth(2, |l| l["message"] == "reloaded");
    assert_eq!(order(&daemon, "/hooks/orders", "the-token").await.0, 401);
    assert_eq!(order(&daemon, "/hooks/orders", "new-token").await.0, 200);
}

#[tokio::test]
async fn events_of_a_renamed_route_wait_for_it_instead_of_dying() {
    let mut daemon = DaemonBuilder::new(
        r#"
[reload]
debounce_ms = 50
"#,
    )
    .route(
        Route::hook("queue", "goflow")
            .secret("the-token")
            .plugins(&["probe"])
            .queue()
            .value("max_attempts", "5")
            .value("backoff_ms", "600000")
            .value("backoff_max_ms", "600000"),
    )
    .plugin("probe")
    .start();
    let sent = crate::harness::client()
        .post(daemon.url("/hooks/queue"))
        .header("Authorization", "Token the-token")
        .json(&serde_json::json!({"input": {"text": "fail-twice"}, "run": {"uuid": "run-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let delivery_id = sent.json::<Value>().await.unwrap()["accepted"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let failed =
        |l: &Value| l["message"] == "plugin failed event" && l["delivery_id"] == delivery_id;
    daemon.wait_for_log(failed);

    // Renamed while its event waits for a retry; the event is then made
    // due at once.
    daemon.edit_config(|c| c.replace("name = \"queue\"", "name = \"renamed\""));
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let events = daemon.cli_json(&["events", "--json"]);
    let id = events[0]["id"].to_string();
    let replayed = daemon.cli(&["replay", &id]);
    assert!(replayed.status.success(), "{replayed:?}");

    // Across a restart it is still queued, and said to be waiting.
    daemon.terminate();
    daemon.spawn();
    let line = daemon.wait_for_log(|l| {
        l["route"] == "queue"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("wait for route"))
    });
    assert_eq!(line["events"], 1);
    let events = daemon.cli_json(&["events", "--json"]);
    assert_eq!(events[0]["status"], "queued", "{events:?}");
    assert!(
        daemon
            .log_lines(|l| l["message"] == "dead letter")
            .is_empty()
    );

    // Its route is back: it is handed over again (attempt 1 after the replay).
    daemon.edit_config(|c| c.replace("name = \"renamed\"", "name = \"queue\""));
    daemon.wait_for_nth(2, |l| l["message"] == "reloaded");
    daemon.wait_for_nth(2, failed);
}

/// Starts the daemon on `config` under umask 022, and waits until it
/// listens. Killed when the returned guard drops.
struct Umasked(std::process::Child);

impl Drop for Umasked {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_under_umask_022(config: &Path) -> Umasked {
    let program = wirehook().get_program().to_owned();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" --log-format json run --config \"$1\"")
        .arg(program)
        .arg(config)
        .env("RUST_LOG", "wirehook=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, listening) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let guard = Umasked(child);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = listening
            .recv_timeout(left)
            .expect("the daemon did not start listening");
        if line.contains("\"listening\"") {
            return guard;
        }
    }
}

#[tokio::test]
async fn the_store_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("wirehook.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\npath = {data:?}\n\n[plugins]\ndir = {:?}\n",
            dir.path()
        ),
    )
    .unwrap();
    let _daemon = start_under_umask_022(&config);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data dir");
    assert_eq!(mode(&data.join("cache")), 0o700, "the compilation cache");
    for file in [
        "wirehook.db",
        "wirehook.db-wal",
        "wirehook.db-shm",
        "wirehook.lock",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}
