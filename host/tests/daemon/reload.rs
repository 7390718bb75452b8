//! Hot reload: config and plugins change while requests keep coming.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route, plugin_wasm, within};

fn daemon(reload: &str) -> Daemon {
    DaemonBuilder::new(&format!(
        r#"
[reload]
{reload}
"#
    ))
    .route(
        Route::hook("orders", "goflow")
            .secret("old-token")
            .plugins(&["order-status"])
            .respond(),
    )
    .plugin("order-status")
    // Literal secrets in the config: a failed reload must not quote them.
    .secret("old-token")
    .secret("new-token")
    .start()
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

/// What the request loop has seen so far.
#[derive(Debug, Default, Clone)]
struct Seen {
    requests: usize,
    failures: Vec<String>,
    /// The probe answered (the new build of the plugin).
    new_plugin: bool,
    /// The old plugin answered after the new one had.
    went_back: bool,
    /// The new token was needed (the old one was refused).
    new_token: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_and_secret_change_under_load_without_a_failed_request() {
    let daemon = daemon("debounce_ms = 50");
    let url = daemon.url("/hooks/orders");
    let (report, mut seen) = watch::channel(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let looper = tokio::spawn(async move {
        let client = crate::harness::client();
        let mut state = Seen::default();
        while !stopping.load(Ordering::Relaxed) {
            let mut answer = None;
            for token in ["old-token", "new-token"] {
                let sent = client
                    .post(&url)
                    .header("Authorization", format!("Token {token}"))
                    .json(&call_webhook("CU001"))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 401 => state.new_token |= token == "old-token",
                    Ok(r) if r.status() == 200 => {
                        answer = Some(r.json::<Value>().await.unwrap());
                        break;
                    }
                    Ok(r) => state.failures.push(format!("status {}", r.status())),
                    Err(e) => state.failures.push(e.to_string()),
                }
            }
            match answer {
                Some(a) if a.get("kind").is_some() => state.new_plugin = true,
                Some(a) => {
                    assert_eq!(a, json!({"number": "CU001", "status": "Shipped"}));
                    state.went_back |= state.new_plugin;
                }
                None => state.failures.push("refused with both tokens".into()),
            }
            state.requests += 1;
            report.send_replace(state.clone());
        }
    });
    within("20 answered requests", seen.wait_for(|s| s.requests >= 20))
        .await
        .unwrap();
    // Deploy a build that answers differently.
    let target = daemon.plugins_dir().join("order-status.wasm");
    daemon.replace_file(&target, &std::fs::read(plugin_wasm("probe")).unwrap());
    let at_plugin_swap = within("the new plugin's answer", seen.wait_for(|s| s.new_plugin))
        .await
        .unwrap()
        .requests;
    within(
        "20 requests after the plugin swap",
        seen.wait_for(|s| s.requests >= at_plugin_swap + 20),
    )
    .await
    .unwrap();
    // Rotate the route's secret.
    daemon.edit_config(|c| c.replace("old-token", "new-token"));
    let at_secret_swap = within("the old token refused", seen.wait_for(|s| s.new_token))
        .await
        .unwrap()
        .requests;
    within(
        "20 requests after the secret swap",
        seen.wait_for(|s| s.requests >= at_secret_swap + 20),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    within("the request loop to stop", looper).await.unwrap();
    let seen = seen.borrow().clone();
    assert!(seen.failures.is_empty(), "{:?}", seen.failures);
    assert!(!seen.went_back, "answers went back to the old plugin");
    let (status, _) = order(&daemon, "/hooks/orders", "old-token").await;
    assert_eq!(status, 401, "the old secret still works");
    let (status, reply) = order(&daemon, "/hooks/orders", "new-token").await;
    assert_eq!(status, 200);
    assert_eq!(reply["payload"]["type"], "flow-call");
}

fn is_watching(line: &Value) -> bool {
    line["message"] == "watching for changes"
}

/// A way to break the running set, for one case.
type BreakIt<'a> = Box<dyn Fn() + 'a>;

#[tokio::test]
async fn a_bad_reload_changes_nothing_and_is_counted() {
    let daemon = daemon("debounce_ms = 50");
    let plugin = daemon.plugins_dir().join("order-status.wasm");
    let good = std::fs::read(&plugin).unwrap();
    let cases: [(&str, BreakIt, &str); 4] = [
        (
            "plugin removed while a route names it",
            Box::new(|| std::fs::remove_file(&plugin).unwrap()),
            "plugin `order-status` has no",
        ),
        (
            "truncated wasm",
            Box::new(|| daemon.replace_file(&plugin, &good[..good.len() / 2])),
            "is not a valid component",
        ),
        (
            "another world",
            Box::new(|| {
                daemon.replace_file(&plugin, &std::fs::read(plugin_wasm("other-world")).unwrap())
            }),
            "does not implement the wirehook:plugin world",
        ),
        (
            "syntax error",
            Box::new(|| daemon.edit_config(|c| c.replace("[[route]]", "[[route]"))),
            "",
        ),
    ];
    for (n, (case, break_it, reason)) in cases.iter().enumerate() {
        break_it();
        // Logged with the file, the key and the reason, and counted.
        let line = daemon.wait_for_log(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed") && m.contains(reason))
                && l["failures"] == n + 1
        });
        assert!(
            line["file"].as_str().unwrap().ends_with("wirehook.toml"),
            "{case}: {line}"
        );
        let (status, reply) = order(&daemon, "/hooks/orders", "old-token").await;
        assert_eq!(status, 200, "{case}");
        assert_eq!(
            reply,
            json!({"number": "CU001", "status": "Shipped"}),
            "{case}"
        );
        // Mend it again before the next case.
        if n < 3 {
            daemon.replace_file(&plugin, &good);
        }
    }
}

#[tokio::test]
async fn only_what_changed_is_loaded_again() {
    let daemon = daemon("debounce_ms = 50");
    assert_eq!(daemon.log_lines(is_watching).len(), 1);
    let loads = || {
        daemon
            .log_lines(|l| l["message"] == "plugin loaded" && l["plugin"] == "order-status")
            .len()
    };
    assert_eq!(loads(), 1);
    // A config change that leaves the plugin alone reuses it.
    daemon.edit_config(|c| c.replace("old-token", "new-token"));
    daemon.wait_for_nth(1, |l| l["message"] == "reloaded");
    assert_eq!(loads(), 1);
    // A changed file is loaded again.
    let plugin = daemon.plugins_dir().join("order-status.wasm");
    daemon.replace_file(&plugin, &std::fs::read(plugin_wasm("probe")).unwrap());
    daemon.wait_for_nth(2, |l| l["message"] == "reloaded");
    assert_eq!(loads(), 2);
}

#[tokio::test]
async fn sighup_reloads() {
    let daemon = daemon("watch = false\ndebounce_ms = 50");
    // The watcher says so before the daemon listens: none was started.
    assert!(daemon.log_lines(is_watching).is_empty(), "watching");
    daemon.edit_config(|c| c.replace("old-token", "new-token"));
    let (status, _) = order(&daemon, "/hooks/orders", "new-token").await;
    assert_eq!(status, 401, "not watching: nothing changes before SIGHUP");
    daemon.signal("HUP");
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let reloads = daemon.log_lines(|l| l["message"] == "reloaded");
    assert_eq!(reloads[0]["cause"], "SIGHUP", "{reloads:?}");
    let (status, _) = order(&daemon, "/hooks/orders", "new-token").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_new_plugin_serves_once_the_config_names_it() {
    let daemon = daemon("debounce_ms = 50");
    daemon.replace_file(
        &daemon.plugins_dir().join("router.wasm"),
        &std::fs::read(plugin_wasm("router")).unwrap(),
    );
    daemon.wait_for_nth(1, |l| l["message"] == "reloaded");
    let routing = Route::hook("routing", "goflow")
        .secret("old-token")
        .plugins(&["router"])
        .respond();
    daemon.edit_config(|c| format!("{c}\n{routing}"));
    daemon.wait_for_log(|l| l["message"] == "reloaded" && l["routes"] == 2);
    let response = crate::harness::client()
        .post(daemon.url("/hooks/routing"))
        .header("Authorization", "Token old-token")
        .json(&json!({"input": {"text": "help me"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["route"], "support");
}

#[tokio::test]
async fn listener_changes_are_logged_as_needing_a_restart() {
    let daemon = daemon("debounce_ms = 50");
    let certs = tempfile::tempdir().unwrap();
    let pki = crate::ops::test_pki("restart");
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, &pki.cert).unwrap();
    std::fs::write(&key, &pki.key).unwrap();
    daemon.edit_config(|c| {
        c.replacen(
            "listen = \"127.0.0.1:0\"",
            &format!(
                "listen = \"127.0.0.1:1\"\nmetrics_listen = \"127.0.0.1:0\"\ntls = {{ cert = {cert:?}, key = {key:?} }}"
            ),
            1,
        )
        .replace("old-token", "new-token")
    });
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let warned =
        |message: &str| daemon.log_lines(|l| l["message"] == message && l["level"] == "WARN");
    let listen = warned("server.listen changed: the new address needs a restart");
    assert_eq!(listen.len(), 1, "{listen:?}");
    assert_eq!(listen[0]["configured"], "127.0.0.1:1");
    assert_eq!(listen[0]["serving"], "127.0.0.1:0");
    for message in [
        "server.metrics_listen changed: the change needs a restart",
        "server.tls was added or removed: the change needs a restart",
    ] {
        assert_eq!(warned(message).len(), 1, "{message}");
    }
    // The rest of the change took: plain HTTP on the old address, the
    // new secret.
    let (status, _) = order(&daemon, "/hooks/orders", "new-token").await;
    assert_eq!(status, 200);
}

/// A deploy that copies the new `.wasm` over the old one in place: the
/// watcher may see the file half-written. That reload fails and changes
/// nothing; once the copy completes the plugin loads.
#[tokio::test]
async fn a_half_written_plugin_fails_once_and_loads_when_the_copy_completes() {
    use std::io::Write;
    let daemon = daemon("debounce_ms = 50");
    let target = daemon.plugins_dir().join("order-status.wasm");
    let new = std::fs::read(plugin_wasm("probe")).unwrap();
    let mut copy = std::fs::File::create(&target).unwrap();
    copy.write_all(&new[..new.len() / 2]).unwrap();
    copy.flush().unwrap();
    let failed = |l: &Value| {
        l["message"].as_str().is_some_and(|m| {
            m.starts_with("reload failed") && m.contains("is not a valid component")
        })
    };
    daemon.wait_for_log(failed);
    let (status, reply) = order(&daemon, "/hooks/orders", "old-token").await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({"number": "CU001", "status": "Shipped"}));
    copy.write_all(&new[new.len() / 2..]).unwrap();
    drop(copy);
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let (status, reply) = order(&daemon, "/hooks/orders", "old-token").await;
    assert_eq!(status, 200);
    assert_eq!(reply["payload"]["type"], "flow-call", "{reply}");
    // Nothing failed once the copy was complete.
    let lines = daemon.log_lines(|_| true);
    let reloaded = lines
        .iter()
        .position(|l| l["message"] == "reloaded")
        .unwrap();
    assert!(!lines[reloaded..].iter().any(failed), "{lines:?}");
}
