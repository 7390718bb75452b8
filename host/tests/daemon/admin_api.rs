//! The admin API on its own listener: the bearer token (wrong ones
//! counted and limited), listing with filters, search and keyset
//! pagination, replay and purge as the CLI does them, routes without
//! secrets, stats, and the security headers every response carries.

use serde_json::{Value, json};

use crate::delivery::body;
use crate::harness::{Daemon, DaemonBuilder, client};

pub(crate) const ADMIN_TOKEN: &str = "admin-token-0123456789";
pub(crate) const HOOK_TOKEN: &str = "console-hook-token";

/// A daemon with the admin listener on a free port, a queue route of the
/// probe whose command comes from the `file:` setting at `command` (so a
/// test makes the plugin fail or succeed by writing it and reloading),
/// retried once before an event is a dead letter.
pub(crate) fn daemon(command: &std::path::Path, admin_extra: &str) -> Daemon {
    std::fs::write(command, "record").unwrap();
    DaemonBuilder::new(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
token = "env:TEST_ADMIN_TOKEN"
{admin_extra}

[plugin.probe]
settings = {{ command = "file:{}", name = "probe" }}

[[route]]
name = "queue"
path = "/hooks/queue"
provider = "goflow"
secret = "env:TEST_QUEUE_TOKEN"
plugins = ["probe"]
mode = "queue"
max_attempts = 1
"#,
        command.display()
    ))
    .plugins_settings("timeout_ms = 60000\nlog_lines_per_sec = 1000000\n")
    .plugin("probe")
    .env("TEST_QUEUE_TOKEN", HOOK_TOKEN)
    .env("TEST_ADMIN_TOKEN", ADMIN_TOKEN)
    .start()
}

/// The admin listener's base URL.
pub(crate) fn admin_url(daemon: &Daemon) -> String {
    let listening = daemon.wait_for_log(|l| l["message"] == "listening");
    format!(
        "http://{}",
        listening["admin_addr"].as_str().expect("admin_addr logged")
    )
}

/// Sends a flow call that runs the configured command; `extra` goes in
/// the body's `contact` (names, hostile text).
pub(crate) async fn send(daemon: &Daemon, n: usize, contact_name: &str) {
    let mut body = body("configured", n);
    body["contact"] = json!({ "uuid": format!("c-{n}"), "name": contact_name });
    let response = client()
        .post(daemon.url("/hooks/queue"))
        .header("Authorization", format!("Token {HOOK_TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Writes the probe's command and reloads, waiting for the `n`th reload.
pub(crate) fn set_command(daemon: &Daemon, command: &std::path::Path, text: &str, n: usize) {
    std::fs::write(command, text).unwrap();
    daemon.signal("HUP");
    daemon.wait_for_nth(n, |l| l["message"] == "reloaded");
}

async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn events(base: &str, query: &str) -> Value {
    let response = get(&format!("{base}/api/events?{query}"), Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits until the API lists `n` events with `status`.
pub(crate) async fn wait_status(base: &str, status: &str, n: usize) -> Vec<Value> {
    crate::harness::eventually(format!("{n} {status} events"), || async {
        let page = events(base, &format!("status={status}&limit=100")).await;
        let found = page["events"].as_array().unwrap().clone();
        (found.len() == n).then_some(found)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_lists_replays_and_purges_behind_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let command = dir.path().join("command");
    let daemon = daemon(&command, "max_failures_per_minute = 3");
    let base = admin_url(&daemon);
    // Not on the providers' listener.
    let there = get(&daemon.url("/api/events"), Some(ADMIN_TOKEN)).await;
    assert_eq!(there.status(), 404);

    for n in 0..3 {
        send(&daemon, n, &format!("Ben {n}")).await;
    }
    wait_status(&base, "delivered", 3).await;
    set_command(&daemon, &command, "drop", 1);
    send(&daemon, 3, "Dora Dead").await;
    let dead = wait_status(&base, "dead", 1).await;
    let dead_id = dead[0]["id"].as_i64().unwrap();

    // Newest first, keyset pages.
    let first = events(&base, "limit=2").await;
    let ids: Vec<i64> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1]);
    let next = first["next"].as_str().expect("a next cursor");
    let second = events(&base, &format!("limit=2&cursor={next}")).await;
    let later: Vec<i64> = second["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|id| *id < ids[1]));
    let last = events(&base, &format!("limit=2&cursor={}", later[1])).await;
    assert_eq!(last["events"].as_array().unwrap().len(), 0);
    assert!(last["next"].is_null());

    // Search: the contact's name, ignoring case; and filters.
    let found = events(&base, "q=dora%20DEAD").await;
    assert_eq!(found["events"].as_array().unwrap().len(), 1);
    assert_eq!(found["events"][0]["id"], dead_id);
    let none = events(&base, "q=nobody-has-this").await;
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    let by_route = events(&base, "route=queue&kind=call_webhook").await;
    assert_eq!(by_route["events"].as_array().unwrap().len(), 4);
    let bad = get(&format!("{base}/api/events?status=lost"), Some(ADMIN_TOKEN)).await;
    assert_eq!(bad.status(), 400);

    // One event: its record, verified body and decoded payload.
    let one: Value = get(&format!("{base}/api/events/{dead_id}"), Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["record"]["status"], "dead");
    assert_eq!(one["event"]["body"]["contact"]["name"], "Dora Dead");
    assert!(one["event"]["payload"].is_object(), "{one}");

    // Replay, as the CLI does it: delivered once the plugin succeeds.
    set_command(&daemon, &command, "record", 2);
    let replayed = client()
        .post(format!("{base}/api/events/{dead_id}/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    wait_status(&base, "delivered", 4).await;

    // A dead letter again, then purged.
    set_command(&daemon, &command, "drop", 3);
    send(&daemon, 4, "Pat Purged").await;
    let dead = wait_status(&base, "dead", 1).await;
    let purged: Value = client()
        .post(format!("{base}/api/dead-letters/purge"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "ids": [dead[0]["id"]] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(purged["purged"], 1);
    wait_status(&base, "dead", 0).await;

    // Routes and plugins, with no secret in them.
    let routes = get(&format!("{base}/api/routes"), Some(ADMIN_TOKEN)).await;
    let text = routes.text().await.unwrap();
    let routes: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(routes["routes"][0]["name"], "queue");
    assert_eq!(routes["plugins"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(routes["plugins"][0]["wit"], "0.2.0");
    assert_eq!(
        routes["plugins"][0]["grants"]["settings"],
        json!(["command", "name"])
    );
    assert_eq!(routes["last_reload"]["ok"], true);
    for secret in [ADMIN_TOKEN, HOOK_TOKEN] {
        assert!(!text.contains(secret), "a secret in /api/routes: {text}");
    }
    let stats: Value = get(&format!("{base}/api/stats?window=1h"), Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let requests: u64 = stats["routes"][0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 4);

    // Every response: a strict policy.
    let csp = get(&format!("{base}/api/events"), Some(ADMIN_TOKEN)).await;
    let csp = csp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));

    // No token, a wrong one: 401, counted; then limited, even the right one.
    assert_eq!(get(&format!("{base}/api/events"), None).await.status(), 401);
    for _ in 0..3 {
        let wrong = get(&format!("{base}/api/events"), Some("wrong-token")).await;
        assert_eq!(wrong.status(), 401);
    }
    let limited = get(&format!("{base}/api/events"), Some(ADMIN_TOKEN)).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    daemon.wait_for_log(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many wrong tokens"))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_changes_nothing_without_its_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let command = dir.path().join("command");
    let daemon = daemon(&command, "");
    let base = admin_url(&daemon);
    let browser = crate::harness::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = browser
        .post(format!("{base}/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = cookie.split(';').next().unwrap().to_owned();

    // The cookie reads; it changes nothing without the CSRF token.
    let read = browser
        .get(format!("{base}/api/events"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let forged = browser
        .post(format!("{base}/api/dead-letters/purge"))
        .header("cookie", &session)
        .json(&json!({ "all": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let page = browser
        .get(format!("{base}/dead-letters"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split(r#"name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let allowed = browser
        .post(format!("{base}/api/dead-letters/purge"))
        .header("cookie", &session)
        .header("x-csrf-token", csrf)
        .json(&json!({ "all": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

#[test]
fn an_admin_listener_without_a_token_is_refused_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wirehook.toml");
    std::fs::write(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[plugins]\ndir = \"plugins\"\n",
    )
    .unwrap();
    let out = crate::harness::output(
        crate::harness::wirehook()
            .args(["check", "--config"])
            .arg(&config),
        crate::harness::WAIT,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("admin.token"), "{stderr}");
}
