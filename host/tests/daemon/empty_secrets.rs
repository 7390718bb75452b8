//! An empty secret (or one of only whitespace) is a config error wherever
//! it comes from — a literal, an `env:` variable set to nothing, a
//! `file:` holding only a newline — for `secret`, `verify_token` and
//! `headers` values alike: `wirehook check` and start-up fail naming the
//! key, a reload that would bring one in fails and changes nothing, and
//! `wirehook sign` refuses one. The value is never printed.

use std::io::Read as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::goflow::call_webhook;
use crate::harness::{DaemonBuilder, Route, plugin_wasm, wirehook};

/// Longer than any start-up that fails on config takes.
const EXIT_WAIT: Duration = Duration::from_secs(60);

/// Runs `command` to its exit, killing it (and failing) past [`EXIT_WAIT`].
fn run_to_exit(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + EXIT_WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not exit within {EXIT_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A config whose five routes each have one empty secret, one way each.
fn config_with_empty_secrets(dir: &std::path::Path) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        plugin_wasm("order-status"),
        plugins.join("order-status.wasm"),
    )
    .unwrap();
    let newline = dir.join("newline-only");
    std::fs::write(&newline, " \r\n\n").unwrap();
    let routes = [
        r#"provider = "goflow"
secret = """#
            .to_owned(),
        r#"provider = "goflow"
secret = "env:T_EMPTY""#
            .to_owned(),
        format!(
            "provider = \"hmac\"\nsecret = \"file:{}\"",
            newline.display()
        ),
        r#"provider = "meta"
secret = "app-secret-kept"
verify_token = "  ""#
            .to_owned(),
        r#"provider = "messangi"
secret = "token-kept"
headers = { X-Client = "env:T_BLANK" }"#
            .to_owned(),
    ];
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = {:?}\n[plugins]\ndir = {:?}\n",
        dir.join("data"),
        plugins
    );
    for (i, route) in routes.iter().enumerate() {
        config.push_str(&format!(
            "\n[[route]]\nname = \"r{i}\"\npath = \"/r{i}\"\nplugins = [\"order-status\"]\n{route}\n"
        ));
    }
    let path = dir.join("wirehook.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn assert_names_every_empty_key(output: &Output, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{what} passed:\n{text}");
    for key in [
        "route[0].secret: is empty",
        "route[1].secret: env:T_EMPTY is empty",
        "route[2].secret: file:",
        "route[3].verify_token: is empty",
        "route[4].headers.X-Client: env:T_BLANK is empty",
    ] {
        assert!(text.contains(key), "{what}: no `{key}` in\n{text}");
    }
    for kept in ["app-secret-kept", "token-kept"] {
        assert!(!text.contains(kept), "{what} printed a secret:\n{text}");
    }
}

#[test]
fn check_and_start_fail_naming_each_empty_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_empty_secrets(dir.path());
    for subcommand in ["check", "run"] {
        let mut command = wirehook();
        command
            .args([subcommand, "--config"])
            .arg(&config)
            .env("T_EMPTY", "")
            .env("T_BLANK", " \t")
            .env("RUST_LOG", "off");
        assert_names_every_empty_key(&run_to_exit(command), subcommand);
    }
}

#[test]
fn sign_refuses_an_empty_secret_or_header_value() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--provider", "goflow", "--secret", ""],
            "--secret: is empty",
        ),
        (
            &["--provider", "goflow", "--secret", "\n"],
            "--secret: is empty",
        ),
        (
            &["--provider", "goflow", "--secret", "env:T_EMPTY"],
            "--secret: env:T_EMPTY is empty",
        ),
        (
            &[
                "--provider",
                "messangi",
                "--secret",
                "tok",
                "--header",
                "X-Api-Key",
                "--header",
                "X-Client=",
            ],
            "--header X-Client: is empty",
        ),
    ];
    for (args, expected) in cases {
        let mut command = wirehook();
        command
            .arg("sign")
            .args(args)
            .env("T_EMPTY", "")
            // Errors reach standard error through the log.
            .env("RUST_LOG", "error");
        let output = run_to_exit(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} passed");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// The secret file emptied, then the config's secret made `""`: each
/// reload fails naming the key, and the route keeps its old token.
#[tokio::test]
async fn a_reload_that_would_bring_an_empty_secret_changes_nothing() {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "old-token\n").unwrap();
    let daemon = DaemonBuilder::new("[reload]\ndebounce_ms = 50\n")
        .route(
            Route::hook("orders", "goflow")
                .secret(&format!("file:{}", token_file.display()))
                .plugins(&["order-status"])
                .respond(),
        )
        .plugin("order-status")
        .start();
    let client = crate::harness::client();
    let order = |token: &'static str| {
        client
            .post(daemon.url("/hooks/orders"))
            .header("Authorization", format!("Token {token}"))
            .json(&call_webhook("CU001"))
            .send()
    };
    assert_eq!(order("old-token").await.unwrap().status(), 200);

    std::fs::write(&token_file, "\n").unwrap();
    daemon.signal("HUP");
    let failed = |n: usize| {
        daemon.wait_for_log(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed") && m.ends_with("is empty"))
                && l["key"] == "route[0].secret"
                && l["failures"] == n
        })
    };
    let line = failed(1);
    assert!(!line.to_string().contains("old-token"), "{line}");
    assert_eq!(order("old-token").await.unwrap().status(), 200);
    assert_eq!(order("").await.unwrap().status(), 401);

    daemon.edit_config(|config| config.replace(&format!("file:{}", token_file.display()), ""));
    failed(2);
    assert_eq!(order("old-token").await.unwrap().status(), 200);
    assert_eq!(order("").await.unwrap().status(), 401);
}
