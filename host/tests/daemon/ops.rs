//! Running as a service: systemd notifications and the shipped unit, TLS
//! termination, `/metrics`, health checks and JSON logs.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};

use crate::exposition::{self, metrics_url, scrape};
use crate::fixtures::GOFLOW_TOKEN;
use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route, workspace_root};

/// The `orders` route, with reloads only on SIGHUP.
fn orders() -> DaemonBuilder {
    DaemonBuilder::new("[reload]\nwatch = false\n").route(
        Route::hook("orders", "goflow")
            .secret("env:GOFLOW_TOKEN")
            .plugins(&["order-status"])
            .respond(),
    )
}

async fn order(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Result<u16> {
    let response = client
        .post(url)
        .header("Authorization", format!("Token {token}"))
        .json(&call_webhook("CU001"))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[test]
fn systemd_hears_ready_reloading_ready_stopping_and_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    // A deadline for a daemon that never speaks, not a pause.
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut daemon = orders()
        .plugin("order-status")
        .env("GOFLOW_TOKEN", GOFLOW_TOKEN)
        .env("NOTIFY_SOCKET", socket_path.to_str().unwrap())
        // 200 ms: pings every 100 ms.
        .env("WATCHDOG_USEC", "200000")
        .start();
    // Everything but watchdog pings, in order.
    let mut states = Vec::new();
    let mut receive_until = |wanted: &str| loop {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification");
        let message = String::from_utf8(buf[..n].to_vec()).unwrap();
        let done = message.starts_with(wanted);
        if message != "WATCHDOG=1\n" {
            states.push(message);
        }
        if done {
            return;
        }
    };
    receive_until("READY=1");
    receive_until("WATCHDOG=1");
    daemon.signal("HUP");
    receive_until("RELOADING=1");
    receive_until("READY=1");
    daemon.terminate();
    receive_until("STOPPING=1");
    assert_eq!(states.len(), 4, "{states:?}");
    assert_eq!(states[0], "READY=1\n");
    let reloading: Vec<&str> = states[1].lines().collect();
    assert_eq!(reloading[0], "RELOADING=1", "{states:?}");
    let usec = reloading[1]
        .strip_prefix("MONOTONIC_USEC=")
        .expect("MONOTONIC_USEC with RELOADING=1");
    assert!(usec.parse::<u64>().unwrap() > 0, "{states:?}");
    assert_eq!(states[2], "READY=1\n");
    assert_eq!(states[3], "STOPPING=1\n");
}

/// The shipped unit, with `ExecStart` pointing at the binary under test
/// (systemd-analyze checks that it exists).
fn shipped_unit(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(workspace_root().join("config/wirehook.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/wirehook "));
    let unit = unit.replace("/usr/local/bin/wirehook", env!("CARGO_BIN_EXE_wirehook"));
    let path = dir.join("wirehook.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn systemd_accepts_the_unit_and_its_exposure_is_the_one_in_the_readme() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("REQUIRE_SYSTEMD_ANALYZE").as_deref() != Ok("1"),
            "REQUIRE_SYSTEMD_ANALYZE=1 but systemd-analyze is not installed"
        );
        crate::harness::skipped(
            "systemd_accepts_the_unit_and_its_exposure_is_the_one_in_the_readme",
            "systemd-analyze is not installed",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = shipped_unit(dir.path());
    let verify = crate::harness::output(
        Command::new("systemd-analyze").arg("verify").arg(&unit),
        crate::harness::WAIT,
    );
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{complaints}");
    assert!(!complaints.contains("wirehook.service"), "{complaints}");

    let security = crate::harness::output(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(&unit),
        crate::harness::WAIT,
    );
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for wirehook.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no exposure figure:\n{report}"));
    let figure: f64 = exposure.parse().unwrap();
    assert!(figure <= 2.0, "exposure {figure}:\n{report}");
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure level of {exposure}")),
        "README.md should record the exposure level of {exposure}"
    );
}

/// A CA and a certificate it signed for `wirehook.test`, as PEM.
pub struct TestPki {
    pub ca: reqwest::Certificate,
    pub cert: String,
    pub key: String,
}

pub fn test_pki(name: &str) -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["wirehook.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    TestPki {
        ca: reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A client that trusts only `ca` and opens a new connection each time.
fn https_client(ca: &reqwest::Certificate, daemon: &Daemon) -> reqwest::Client {
    crate::harness::client_builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .resolve("wirehook.test", daemon.addr)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_routes_answer_over_https_and_a_reload_swaps_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let first = test_pki("first");
    std::fs::write(&cert_path, &first.cert).unwrap();
    std::fs::write(&key_path, &first.key).unwrap();
    let daemon = orders()
        .plugin("order-status")
        .env("GOFLOW_TOKEN", GOFLOW_TOKEN)
        .server_settings(&format!(
            "tls = {{ cert = {cert_path:?}, key = {key_path:?} }}"
        ))
        .start();
    let url = format!("https://wirehook.test:{}/hooks/orders", daemon.addr.port());
    assert_eq!(
        daemon.wait_for_log(|l| l["message"] == "listening")["tls"],
        true
    );

    let trusts_first = https_client(&first.ca, &daemon);
    assert_eq!(order(&trusts_first, &url, GOFLOW_TOKEN).await.unwrap(), 200);
    // Plain HTTP on the TLS port gets no answer.
    let plain = order(
        &crate::harness::client(),
        &daemon.url("/hooks/orders"),
        GOFLOW_TOKEN,
    )
    .await;
    assert!(plain.is_err(), "{plain:?}");

    // A renewed certificate is served to new connections after a reload.
    let second = test_pki("second");
    daemon.replace_file(&key_path, second.key.as_bytes());
    daemon.replace_file(&cert_path, second.cert.as_bytes());
    daemon.signal("HUP");
    daemon.wait_for_nth(1, |l| l["message"] == "reloaded");
    let trusts_second = https_client(&second.ca, &daemon);
    assert_eq!(
        order(&trusts_second, &url, GOFLOW_TOKEN).await.unwrap(),
        200
    );
    assert!(order(&trusts_first, &url, GOFLOW_TOKEN).await.is_err());

    // A broken certificate fails the reload and the served one stays.
    daemon.replace_file(&cert_path, b"-----BEGIN CERTIFICATE-----\nbroken\n");
    daemon.signal("HUP");
    let failed = daemon.wait_for_log(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reload failed"))
    });
    assert_eq!(failed["key"], "server.tls.cert", "{failed}");
    assert_eq!(
        order(&trusts_second, &url, GOFLOW_TOKEN).await.unwrap(),
        200
    );
}

fn sample(samples: &exposition::Samples, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_parse_and_move_with_requests_failures_and_reloads() {
    let daemon = orders()
        .plugin("order-status")
        .env("GOFLOW_TOKEN", GOFLOW_TOKEN)
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start();
    let metrics_url = metrics_url(&daemon);
    let client = crate::harness::client();
    let url = daemon.url("/hooks/orders");

    let before = scrape(&client, &metrics_url).await;
    for family in [
        "wirehook_queue_depth",
        "wirehook_store_bytes",
        "wirehook_reloads_total",
        "wirehook_reload_failures_total",
    ] {
        assert!(before.contains_key(family), "{family} missing: {before:?}");
    }
    assert!(before["wirehook_store_bytes"] > 0.0);
    assert_eq!(before["wirehook_queue_depth"], 0.0);

    assert_eq!(order(&client, &url, GOFLOW_TOKEN).await.unwrap(), 200);
    assert_eq!(order(&client, &url, GOFLOW_TOKEN).await.unwrap(), 200);
    assert_eq!(order(&client, &url, "wrong-token").await.unwrap(), 401);
    daemon.signal("HUP");
    daemon.wait_for_nth(1, |l| l["message"] == "reloaded");
    daemon.edit_config(|c| c.replace("[[route]]", "[[route]"));
    daemon.signal("HUP");
    daemon.wait_for_log(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reload failed"))
    });

    let after = scrape(&client, &metrics_url).await;
    let moved = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        moved(r#"wirehook_requests_total{route="orders",status="200"}"#),
        2.0
    );
    assert_eq!(
        moved(r#"wirehook_requests_total{route="orders",status="401"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"wirehook_verification_failures_total{route="orders",reason="unauthorized"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"wirehook_plugin_call_duration_seconds_count{plugin="order-status",outcome="ok"}"#),
        2.0
    );
    assert!(
        moved(r#"wirehook_plugin_call_duration_seconds_sum{plugin="order-status",outcome="ok"}"#)
            > 0.0
    );
    assert_eq!(moved("wirehook_reloads_total"), 1.0);
    assert_eq!(moved("wirehook_reload_failures_total"), 1.0);

    // Metrics stay off the public listener, which answers health checks.
    let on_main = client.get(daemon.url("/metrics")).send().await.unwrap();
    assert_eq!(on_main.status(), 404);
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = client.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({ "status": status })
        );
    }
}

#[tokio::test]
async fn json_logs_from_the_config_carry_route_and_delivery_id() {
    let daemon = DaemonBuilder::new(
        r#"
[log]
format = "json"
"#,
    )
    .route(
        Route::new("queued-orders", "/hooks/queued", "goflow")
            .secret("env:GOFLOW_TOKEN")
            .plugins(&["order-status"]),
    )
    .plugin("order-status")
    .env("GOFLOW_TOKEN", GOFLOW_TOKEN)
    .log_format_from_config()
    .start();
    let response = crate::harness::client()
        .post(daemon.url("/hooks/queued"))
        .header("Authorization", format!("Token {GOFLOW_TOKEN}"))
        .json(&call_webhook("CU002"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let delivery_id = body["accepted"][0].as_str().unwrap().to_owned();
    daemon.wait_plugin_calls("queued-orders", 1);

    let handled = daemon.wait_for_log(|l| l["message"] == "plugin handled event");
    assert_eq!(handled["route"], "queued-orders");
    assert_eq!(handled["delivery_id"], delivery_id.as_str());
    let accepted = daemon.wait_for_log(|l| l["message"] == "accepted");
    assert_eq!(accepted["route"], "queued-orders");
    assert!(
        accepted["accepted"]
            .as_str()
            .unwrap()
            .contains(&delivery_id),
        "{accepted}"
    );
    // Every line was JSON: the harness wraps any other line as a bare
    // message, without a level or timestamp.
    let lines = daemon.log_lines(|_| true);
    assert!(lines.len() > 3);
    for line in &lines {
        assert!(
            line["level"].is_string() && line["timestamp"].is_string(),
            "not a JSON log line: {line}"
        );
        if line.get("delivery_id").is_some() {
            assert!(
                line["route"].is_string(),
                "delivery id without route: {line}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_count_retries_dead_letters_and_the_queue() {
    let daemon = DaemonBuilder::new("")
        .route(
            Route::hook("queue", "goflow")
                .secret("env:GOFLOW_TOKEN")
                .plugins(&["probe"])
                .value("max_attempts", "2")
                .value("backoff_ms", "10")
                .value("backoff_max_ms", "10"),
        )
        .plugin("probe")
        .env("GOFLOW_TOKEN", GOFLOW_TOKEN)
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start();
    let metrics_url = metrics_url(&daemon);
    let client = crate::harness::client();
    // The probe asks for a retry every time: one retry, then a dead letter.
    let response = client
        .post(daemon.url("/hooks/queue"))
        .header("Authorization", format!("Token {GOFLOW_TOKEN}"))
        .json(&json!({"input": {"text": "retry"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    daemon.wait_for_log(|l| l["message"] == "dead letter");

    let samples = scrape(&client, &metrics_url).await;
    assert_eq!(
        sample(&samples, r#"wirehook_retries_total{route="queue"}"#),
        1.0
    );
    assert_eq!(
        sample(&samples, r#"wirehook_dead_letters_total{route="queue"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"wirehook_plugin_call_duration_seconds_count{plugin="probe",outcome="retry"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(
            &samples,
            r#"wirehook_requests_total{route="queue",status="202"}"#
        ),
        1.0
    );
    assert_eq!(samples["wirehook_queue_depth"], 0.0);
}
