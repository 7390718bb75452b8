//! What the daemon writes about what it is sent stays one line each, in
//! bounded number and size, and never drives a terminal: hostile delivery
//! ids and kinds are escaped in the human log and the CLI's listings,
//! floods of 404s and refusals are rate-limited with a count of what was
//! suppressed, long paths and plugin log lines are cut, a trapped
//! plugin's caller learns nothing of its insides, and colour codes only
//! go to a terminal.

use std::time::Instant;

use serde_json::{Value, json};

use crate::exposition::{metrics_url, scrape};
use crate::fixtures::{GOFLOW_TOKEN, builder, meta_signature, meta_text_message, post};
use crate::harness::{Daemon, client};

/// A delivery id that, written raw, would retitle the terminal (OSC),
/// clear it and colour what follows (CSI, also as the C1 byte), forge a
/// second log line and reverse the text after it.
const HOSTILE_ID: &str =
    "wamid.\x1b]0;pwned\x07\x1b[2J\x1b[31m\nFORGED WARN line\r\u{9b}1m\u{202e}evil\u{7f}";
/// A message type (the event's kind) of the same sort.
const HOSTILE_KIND: &str = "text\x1b[5m\nFORGED kind\u{202e}";

/// Characters none of the output may hold raw.
const RAW_CONTROLS: [char; 6] = ['\x1b', '\x07', '\r', '\u{9b}', '\u{202e}', '\u{7f}'];

/// A Meta body with one message per `(id, type, text)`.
fn meta_messages(messages: &[(&str, &str, &str)]) -> String {
    let mut body = meta_text_message();
    let template = body["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    let messages: Vec<Value> = messages
        .iter()
        .map(|(id, kind, text)| {
            let mut message = template.clone();
            message["id"] = json!(id);
            message["type"] = json!(kind);
            message["text"]["body"] = json!(text);
            message
        })
        .collect();
    body["entry"][0]["changes"][0]["value"]["messages"] = json!(messages);
    body.to_string()
}

async fn post_meta(daemon: &Daemon, path: &str, body: &str) -> reqwest::Response {
    post(
        daemon,
        path,
        &[("X-Hub-Signature-256".into(), meta_signature(body))],
        body,
    )
    .await
}

fn assert_no_raw_controls(what: &str, text: &str) {
    assert!(
        !text.contains(RAW_CONTROLS),
        "{what} holds raw control characters: {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("FORGED")),
        "{what} has a forged line: {text:?}"
    );
}

/// The escaped form of [`HOSTILE_ID`]'s start, as tables and the human
/// log show it.
const ESCAPED_ID: &str =
    r"wamid.\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m\nFORGED WARN line\r\u{9b}1m\u{202e}evil\u{7f}";

#[tokio::test]
async fn hostile_ids_and_kinds_are_escaped_in_the_human_log_and_the_cli() {
    let mut daemon = builder().start();
    let log = daemon.restart_human();
    let plugin_line = format!("{HOSTILE_ID}-seen");
    let body = meta_messages(&[
        // The probe drops it: a dead letter.
        (HOSTILE_ID, "text", "drop"),
        // Echoed: delivered, with a hostile kind.
        ("wamid.kind", HOSTILE_KIND, "hello"),
        // The probe logs `seen <id>` through the host.
        (&plugin_line, "text", "record"),
    ]);
    let response = post_meta(&daemon, "/hooks/meta-queue", &body).await;
    assert_eq!(response.status(), 202);

    let dead = log.wait_for(|l| l.contains(" dead letter "));
    assert!(dead.contains(ESCAPED_ID), "{dead}");
    let seen = log.wait_for(|l| l.contains("seen wamid."));
    assert!(seen.contains(&format!("seen {ESCAPED_ID}-seen")), "{seen}");
    log.wait_for(|l| l.contains("plugin handled event") && l.contains("wamid.kind"));

    // Tables: one line an event, the id and kind escaped.
    let events = daemon.cli(&["events"]);
    assert!(events.status.success(), "{events:?}");
    let table = String::from_utf8(events.stdout).unwrap();
    assert_no_raw_controls("`wirehook events`", &table);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.contains(ESCAPED_ID), "{table}");
    assert!(
        table.contains(r"text\u{1b}[5m\nFORGED kind\u{202e}"),
        "{table}"
    );
    let dead_letters = daemon.cli(&["dead-letters", "list"]);
    let table = String::from_utf8(dead_letters.stdout).unwrap();
    assert_no_raw_controls("`wirehook dead-letters list`", &table);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains(ESCAPED_ID), "{table}");

    // JSON: escaped on the way out, the same id once parsed.
    let listed = daemon.cli(&["events", "--json"]);
    let lines = String::from_utf8(listed.stdout).unwrap();
    assert_no_raw_controls("`wirehook events --json`", &lines);
    let records: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = records
        .iter()
        .find(|r| r["delivery_id"] == HOSTILE_ID)
        .unwrap_or_else(|| panic!("{lines}"));
    assert!(records.iter().any(|r| r["kind"] == HOSTILE_KIND), "{lines}");
    let id = record["id"].to_string();
    let shown = daemon.cli(&["dead-letters", "show", &id]);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert_no_raw_controls("`wirehook dead-letters show`", &shown);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["record"]["delivery_id"], HOSTILE_ID);

    // The human log, whole: one line an event, nothing raw.
    for line in log.lines() {
        assert_no_raw_controls("the human log", &line);
    }
}

#[tokio::test]
async fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let mut daemon = builder().start();
    let log = daemon.restart_human();
    // A warning and an info line, the levels a terminal would colour.
    let response = client()
        .post(daemon.url("/hooks/goflow"))
        .json(&json!({"input": {"text": "hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    log.wait_for(|l| l.contains("WARN") && l.contains("request refused"));
    for line in log.lines() {
        assert!(!line.contains('\x1b'), "colour code in {line:?}");
    }
}

/// How many of `lines` are `message` lines of a kind, and the sum of the
/// `suppressed` counts reported for that kind.
fn written_and_suppressed(
    lines: &[Value],
    message: &str,
    kind: impl Fn(&Value) -> bool,
) -> (usize, u64) {
    let written = lines
        .iter()
        .filter(|l| l["message"] == message && kind(l))
        .count();
    let suppressed = lines
        .iter()
        .filter(|l| l["message"] == "similar lines suppressed" && l["line"] == message && kind(l))
        .map(|l| l["suppressed"].as_u64().unwrap())
        .sum();
    (written, suppressed)
}

#[tokio::test]
async fn floods_of_404s_and_refusals_write_a_bounded_number_of_lines() {
    const FLOOD: usize = 150;
    // The limiter's burst, and its refill of a line a second.
    const BURST: usize = 20;
    let daemon = builder()
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start();
    let client = client();
    let long_path = format!("/nowhere/{}", "a".repeat(2000));
    let started = Instant::now();
    for _ in 0..FLOOD {
        let response = client.get(daemon.url(&long_path)).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let response = client
            .post(daemon.url("/hooks/goflow"))
            .header("Authorization", "Token wrong")
            .json(&json!({"input": {"text": "hi"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let took = started.elapsed().as_secs() as usize;
    let bound = BURST + took + 1;

    // Every request is accounted for: written, or counted as suppressed
    // (by a later line or the periodic report).
    let is_refusal = |l: &Value| l["route"] == "goflow" && l["status"] == 401;
    let accounted = |lines: &[Value]| {
        let unrouted = written_and_suppressed(lines, "no route for path", |_| true);
        let refused = written_and_suppressed(lines, "request refused", is_refusal);
        unrouted.0 + unrouted.1 as usize == FLOOD && refused.0 + refused.1 as usize == FLOOD
    };
    daemon.wait_until(accounted);
    let lines = daemon.log_lines(|_| true);
    for (message, written) in [
        (
            "no route for path",
            written_and_suppressed(&lines, "no route for path", |_| true).0,
        ),
        (
            "request refused",
            written_and_suppressed(&lines, "request refused", is_refusal).0,
        ),
    ] {
        assert!(
            (BURST..=bound).contains(&written),
            "{written} `{message}` lines for {FLOOD} requests in {took} s"
        );
    }

    // Paths are cut, with a marker.
    for line in daemon.log_lines(|l| l["message"] == "no route for path") {
        let path = line["path"].as_str().unwrap();
        assert!(path.len() < 250, "{path}");
        assert!(path.starts_with("/nowhere/aaa"), "{path}");
        assert!(path.ends_with("more bytes cut]"), "{path}");
    }

    // The metrics count every request.
    let samples = scrape(&client, &metrics_url(&daemon)).await;
    assert_eq!(
        samples[r#"wirehook_requests_total{route="",status="404"}"#],
        FLOOD as f64
    );
    assert_eq!(
        samples[r#"wirehook_requests_total{route="goflow",status="401"}"#],
        FLOOD as f64
    );
}

#[tokio::test]
async fn plugin_log_lines_are_cut_to_4_kib() {
    let daemon = builder()
        .server_settings("max_body_bytes = 4194304")
        .start();
    // The probe logs `seen <id> attempt 1`: over a megabyte, with newlines.
    let id = format!("big\nid\n{}", "x".repeat(1 << 20));
    let body = meta_messages(&[(&id, "text", "record")]);
    let response = post_meta(&daemon, "/hooks/meta", &body).await;
    assert_eq!(response.status(), 204);
    let line = daemon.wait_for_log(|l| {
        l["plugin"] == "probe"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("seen big\nid\n"))
    });
    let message = line["message"].as_str().unwrap();
    assert!(message.len() <= 4096 + 40, "{} bytes", message.len());
    assert!(
        message.ends_with(&format!("[{} more bytes cut]", id.len() + 15 - 4096)),
        "{}",
        &message[4000..]
    );
}

#[tokio::test]
async fn a_trapped_plugin_answers_502_without_its_backtrace() {
    let daemon = builder().start();
    let response = client()
        .post(daemon.url("/hooks/goflow"))
        .header("Authorization", format!("Token {GOFLOW_TOKEN}"))
        .json(&json!({"input": {"text": "panic"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "plugin trapped"}));
    // The whole error, backtrace and all, is in the log.
    let line = daemon.wait_for_log(|l| l["message"] == "plugin failed event");
    let error = line["error"].as_str().unwrap();
    assert!(error.contains("plugin trapped: "), "{error}");
    assert!(error.contains("backtrace"), "{error}");
}
