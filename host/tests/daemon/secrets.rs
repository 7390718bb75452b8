//! Secrets from systemd's credentials directory, and secrets never shown:
//! not by `check`, not by a failed reload, not anywhere in the log (the
//! harness reads each whole log for the secrets a test names).

use crate::goflow::call_webhook;
use crate::harness::{Daemon, DaemonBuilder, Route};

/// Distinctive, so a match in the log is this secret and nothing else.
const TOKEN: &str = "cred-goflow-7f3a9c2e";

fn daemon(credentials: &std::path::Path) -> Daemon {
    DaemonBuilder::new(
        r#"
[reload]
debounce_ms = 50
"#,
    )
    .route(
        Route::hook("orders", "goflow")
            .secret("file:${CREDENTIALS_DIRECTORY}/goflow-token")
            .plugins(&["order-status"])
            .respond(),
    )
    .plugin("order-status")
    .env("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap())
    .secret(TOKEN)
    .start()
}

async fn order(daemon: &Daemon, token: &str) -> u16 {
    crate::harness::client()
        .post(daemon.url("/hooks/orders"))
        .header("Authorization", format!("Token {token}"))
        .json(&call_webhook("CU001"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_secret_from_the_credentials_directory_serves_and_is_never_shown() {
    let credentials = tempfile::tempdir().unwrap();
    // As the README's `printf %s` writes it: no newline.
    std::fs::write(credentials.path().join("goflow-token"), TOKEN).unwrap();
    let daemon = daemon(credentials.path());
    assert_eq!(order(&daemon, TOKEN).await, 200);
    assert_eq!(order(&daemon, "cred-goflow-wrong").await, 401);
    // `check` resolves it too, and prints it nowhere (the harness looks).
    let checked = daemon.cli(&["check"]);
    assert!(checked.status.success(), "{checked:?}");

    // Reloads that fail on the lines that hold the secret as a literal:
    // each is reported by key, never quoting the value.
    let file_secret = "secret = \"file:${CREDENTIALS_DIRECTORY}/goflow-token\"";
    let broken = [
        format!("secret = \"{TOKEN}\"\nsecret_typo = \"{TOKEN}\""),
        format!("secret = \"{TOKEN}"),
        format!("secret = {TOKEN}"),
        format!("secret = [\"{TOKEN}\"]"),
    ];
    for (n, lines) in broken.iter().enumerate() {
        daemon.edit_config(|c| c.replace(file_secret, lines));
        daemon.wait_for_log(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("reload failed"))
                && l["failures"] == n + 1
        });
        let checked = daemon.cli(&["check"]);
        assert!(!checked.status.success(), "{lines}");
        daemon.edit_config(|c| c.replace(lines.as_str(), file_secret));
        daemon.wait_for_nth(n + 1, |l| l["message"] == "reloaded");
    }
    assert_eq!(order(&daemon, TOKEN).await, 200);
}
