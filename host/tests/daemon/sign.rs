//! `wirehook sign`: its output, sent as printed (parsed, or as the curl
//! command it prints with `--curl`), is accepted by a running daemon for
//! every provider.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::fixtures::*;
use crate::harness::{Daemon, now, wirehook};

/// Providers whose proof is the shared token itself, so the printed
/// request must carry it.
const SENT_AS_IS: &[&str] = &["goflow", "messangi", "whatsable"];

struct Case {
    provider: &'static str,
    path: &'static str,
    secret: &'static str,
    args: &'static [&'static str],
    payload: String,
}

fn cases() -> Vec<Case> {
    let case = |provider, path, secret, args, payload: String| Case {
        provider,
        path,
        secret,
        args,
        payload,
    };
    vec![
        case("messangi", "/hooks/messangi", MESSANGI_TOKEN, &["--header", "X-Api-Key", "--header", "X-Client=acme"], MESSANGI_INTERACTION.into()),
        // Pretty-printed: OneRoute sends (and signs) the JSON.stringify form.
        case("oneroute", "/hooks/oneroute", ONEROUTE_SECRET, &[], serde_json::to_string_pretty(&json!({"event": "newMessage", "message": {"content": "héllo 😀", "contentType": "TEXT"}, "1": 1.0})).unwrap()),
        case("whatsable", "/hooks/whatsable", WHATSABLE_TOKEN, &[], WHATSABLE_INCOMING.into()),
        case("meta", "/hooks/meta", META_SECRET, &[], meta_text_message().to_string()),
        // The secret from the environment, as an operator would pass it.
        case("standard-webhooks", "/hooks/standard", "env:T_SW", &[], r#"{"type":"invoice.paid","data":{}}"#.into()),
        case("hmac", "/hooks/hmac", HMAC_SECRET, &["--header", "X-Shopify-Hmac-Sha256", "--encoding", "base64"], r#"{"type":"orders/create"}"#.into()),
        case("goflow", "/hooks/goflow", GOFLOW_TOKEN, &[], crate::goflow::call_webhook("CU002").to_string()),
        case("truora", "/hooks/truora", TRUORA_SECRET, &[], json!({"event": "Success", "flow_id": "IPF1", "exp": now() + 300}).to_string()),
        case("shopify", "/hooks/shopify", SHOPIFY_SECRET, &[], json!({"id": 450789469, "order_number": 1001, "x_shopify_topic": "orders/paid"}).to_string()),
    ]
}

/// Runs `wirehook sign` for `case` with the payload in a file (or on
/// standard input) and returns its standard output.
fn sign(case: &Case, extra: &[&str], stdin: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.json");
    // With the newline an editor leaves.
    std::fs::write(&file, format!("{}\n", case.payload)).unwrap();
    let mut command = wirehook();
    command
        .args(["sign", "--provider", case.provider, "--secret", case.secret])
        .args(case.args)
        .args(extra)
        .env("T_SW", SW_SECRET)
        .env("RUST_LOG", "off");
    if stdin {
        let input = dir.path().join("stdin.json");
        std::fs::write(&input, &case.payload).unwrap();
        command.stdin(std::fs::File::open(&input).unwrap());
    } else {
        command.arg(&file).stdin(Stdio::null());
    }
    let output = crate::harness::output(&mut command, crate::harness::WAIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", case.provider);
    String::from_utf8(output.stdout).unwrap()
}

/// Headers, a blank line, the body and a final newline.
pub(crate) fn parse(printed: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = printed
        .split_once("\n\n")
        .expect("a blank line after the headers");
    let headers = head
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("`Name: value`");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    (
        headers,
        body.strip_suffix('\n').expect("a final newline").to_owned(),
    )
}

async fn send(
    daemon: &Daemon,
    path: &str,
    headers: &[(String, String)],
    body: String,
) -> reqwest::Response {
    let mut request = crate::harness::client().post(daemon.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn signed_output_is_accepted_for_every_provider() {
    let daemon = builder().start();
    for (i, case) in cases().iter().enumerate() {
        let (headers, body) = parse(&sign(case, &[], i % 2 == 1));
        let response = send(&daemon, case.path, &headers, body.clone()).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{}: {text}", case.provider);
        let seen: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(seen["source"]["provider"], case.provider);
        // And the signature is what makes it pass.
        let mut tampered = body.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x01;
        if case.provider != "messangi" && case.provider != "whatsable" && case.provider != "goflow"
        {
            let response = send(
                &daemon,
                case.path,
                &headers,
                String::from_utf8_lossy(&tampered).into_owned(),
            )
            .await;
            assert_eq!(
                response.status(),
                401,
                "{} accepted a changed body",
                case.provider
            );
        }
    }
}

#[tokio::test]
async fn printed_curl_command_is_accepted_for_every_provider() {
    let daemon = builder().start();
    for case in cases() {
        let url = daemon.url(case.path);
        let command = sign(&case, &["--curl", &url], false);
        assert!(command.starts_with("curl "), "{command}");
        // Signed, not carrying the secret (unless the scheme sends it as
        // the token itself).
        if !case.secret.starts_with("env:") && !SENT_AS_IS.contains(&case.provider) {
            assert!(
                !command.contains(case.secret),
                "{}: secret printed",
                case.provider
            );
        }
        let output = crate::harness::output(
            Command::new("sh").arg("-c").arg(&command),
            crate::harness::WAIT,
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {}",
            case.provider,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.starts_with("HTTP/1.1 200"),
            "{}: {command}\n{stdout}",
            case.provider
        );
        assert!(
            stdout.contains(&format!(r#""provider":"{}""#, case.provider)),
            "{stdout}"
        );
    }
}

#[test]
fn sign_refuses_what_no_route_could_be() {
    let run = |args: &[&str]| {
        let output = crate::harness::output(
            wirehook().arg("sign").args(args).stdin(Stdio::null()),
            crate::harness::WAIT,
        );
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run(&["--provider", "carrier-pigeon", "--secret", "s", "/dev/null"]);
    assert!(!ok && stderr.contains("unknown provider"), "{stderr}");
    let (ok, stderr) = run(&[
        "--provider",
        "meta",
        "--secret",
        "s",
        "--prefix",
        "x=",
        "/dev/null",
    ]);
    assert!(!ok && stderr.contains("prefix"), "{stderr}");
    let (ok, stderr) = run(&["--provider", "meta", "--secret", "s", "/dev/null"]);
    assert!(!ok && stderr.contains("not JSON"), "{stderr}");
}
