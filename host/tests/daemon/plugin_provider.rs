//! Provider plugins (`provider = "plugin:NAME"`) through the real daemon:
//! the shipped `hubspot` example with requests signed HubSpot's way by
//! code here, then forged, stale and tampered copies; the `leaky` fixture,
//! which tries to get its route's secret out and must find nothing; a
//! trapping, a slow and a lying verifier refused while the listener keeps
//! answering; and `check` and reload of such a route.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::exposition::{metrics_url, scrape};
use crate::harness::provider::{now_ms, post};
use crate::harness::{Daemon, DaemonBuilder, Route, client};

const HUBSPOT_SECRET: &str = "hubspot-client-secret-9f8e7d6c5b4a";
const HUBSPOT_URL: &str = "https://hooks.example.com/hooks/hubspot";
const LEAKY_SECRET: &str = "leaky-route-secret-0a1b2c3d4e5f";
const LEAKY_OTHER: &str = "leaky-named-secret-f5e4d3c2b1a0";

/// HubSpot's v3 signature: base64 HMAC-SHA256 of method, URL, body and
/// timestamp, as HubSpot's documentation describes it.
fn hubspot_signature(secret: &str, method: &str, url: &str, body: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(method.as_bytes());
    mac.update(url.as_bytes());
    mac.update(body.as_bytes());
    mac.update(timestamp.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn contact_events() -> String {
    json!([
        {
            "eventId": 100, "subscriptionId": 7, "portalId": 62515, "appId": 54321,
            "occurredAt": 1_700_000_000_000u64, "subscriptionType": "contact.creation",
            "attemptNumber": 0, "objectId": 123, "changeSource": "CRM", "changeFlag": "NEW"
        },
        {
            "eventId": 101, "subscriptionId": 8, "portalId": 62515, "appId": 54321,
            "occurredAt": 1_700_000_000_500u64, "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": 123, "propertyName": "email",
            "propertyValue": "ana@example.com", "changeSource": "CRM"
        }
    ])
    .to_string()
}

fn hubspot_headers(signature: String, timestamp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("x-hubspot-signature-v3", signature),
        ("x-hubspot-request-timestamp", timestamp.to_owned()),
    ]
}

fn hubspot_daemon() -> Daemon {
    DaemonBuilder::new("")
        .route(
            Route::hook("hubspot", "plugin:hubspot")
                .secret("env:HUBSPOT_SECRET")
                .text("public_url", HUBSPOT_URL)
                .plugins(&["probe"])
                .respond(),
        )
        .route(
            Route::hook("hubspot-queue", "plugin:hubspot")
                .secret("env:HUBSPOT_SECRET")
                .text(
                    "public_url",
                    "https://hooks.example.com/hooks/hubspot-queue",
                )
                .plugins(&["probe"])
                .queue(),
        )
        .plugin("hubspot")
        .plugin("probe")
        .env("HUBSPOT_SECRET", HUBSPOT_SECRET)
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start()
}

#[tokio::test]
async fn hubspot_requests_signed_forged_stale_and_tampered() {
    let daemon = hubspot_daemon();
    let body = contact_events();
    let timestamp = now_ms().to_string();
    let signature = hubspot_signature(HUBSPOT_SECRET, "POST", HUBSPOT_URL, &body, &timestamp);

    // Signed: each event reaches the plugin; the last one's echo answers.
    let (status, text) = post(
        &daemon,
        "/hooks/hubspot",
        &hubspot_headers(signature.clone(), &timestamp),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["kind"], "contact.propertyChange", "{seen}");
    assert_eq!(seen["source"]["provider"], "plugin:hubspot");
    assert_eq!(seen["source"]["delivery_id"], "101");
    assert_eq!(seen["raw_json"]["propertyValue"], "ana@example.com");
    daemon.wait_plugin_calls("hubspot", 2);

    let refused = |(status, text): (u16, String), expected: u16, why: &str| {
        assert_eq!(status, expected, "{why}: {text}");
        text
    };
    // Forged: signed with another secret.
    let forged = hubspot_signature("not-the-secret", "POST", HUBSPOT_URL, &body, &timestamp);
    let text = refused(
        post(
            &daemon,
            "/hooks/hubspot",
            &hubspot_headers(forged, &timestamp),
            &body,
        )
        .await,
        401,
        "forged",
    );
    assert!(text.contains("signature mismatch"), "{text}");
    // Stale: signed as HubSpot would have six minutes ago.
    let old = (now_ms() - 6 * 60 * 1000).to_string();
    let stale = hubspot_signature(HUBSPOT_SECRET, "POST", HUBSPOT_URL, &body, &old);
    let text = refused(
        post(
            &daemon,
            "/hooks/hubspot",
            &hubspot_headers(stale, &old),
            &body,
        )
        .await,
        401,
        "stale",
    );
    assert!(text.contains("tolerance"), "{text}");
    // Tampered: the signed body with one value changed.
    let tampered = body.replace("ana@example.com", "eve@example.com");
    refused(
        post(
            &daemon,
            "/hooks/hubspot",
            &hubspot_headers(signature.clone(), &timestamp),
            &tampered,
        )
        .await,
        401,
        "tampered",
    );
    // A timestamp moved without signing it again.
    let later = (now_ms() + 1000).to_string();
    refused(
        post(
            &daemon,
            "/hooks/hubspot",
            &hubspot_headers(signature.clone(), &later),
            &body,
        )
        .await,
        401,
        "timestamp moved",
    );
    // Signed over the URL wirehook sees, not the public one HubSpot calls.
    let local = hubspot_signature(
        HUBSPOT_SECRET,
        "POST",
        &daemon.url("/hooks/hubspot"),
        &body,
        &timestamp,
    );
    refused(
        post(
            &daemon,
            "/hooks/hubspot",
            &hubspot_headers(local, &timestamp),
            &body,
        )
        .await,
        401,
        "local URL",
    );
    // No proof at all, and a body that is not what HubSpot sends.
    refused(
        post(&daemon, "/hooks/hubspot", &[], &body).await,
        401,
        "unsigned",
    );
    let mut text_plain = hubspot_headers(signature.clone(), &timestamp);
    text_plain[0].1 = "text/plain".to_owned();
    refused(
        post(&daemon, "/hooks/hubspot", &text_plain, &body).await,
        415,
        "text/plain",
    );
    // A GET: the plugin makes no handshake.
    let get = client()
        .get(daemon.url("/hooks/hubspot"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(
        daemon.plugin_calls("hubspot"),
        2,
        "no refused request reached the plugin"
    );

    // Queued: stored once per eventId, however often HubSpot sends it.
    let queue_url = "https://hooks.example.com/hooks/hubspot-queue";
    let signature = hubspot_signature(HUBSPOT_SECRET, "POST", queue_url, &body, &timestamp);
    let headers = hubspot_headers(signature, &timestamp);
    let (status, text) = post(&daemon, "/hooks/hubspot-queue", &headers, &body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"accepted": ["100", "101"]})
    );
    let (status, text) = post(&daemon, "/hooks/hubspot-queue", &headers, &body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["duplicates"],
        json!(["100", "101"])
    );
    daemon.wait_plugin_calls("hubspot-queue", 2);

    let samples = scrape(&client(), &metrics_url(&daemon)).await;
    let unauthorized = samples
        .get(r#"wirehook_verification_failures_total{route="hubspot",reason="unauthorized"}"#)
        .copied()
        .unwrap_or(0.0);
    assert_eq!(unauthorized, 6.0);
}

fn leaky_daemon() -> Daemon {
    DaemonBuilder::new("")
        .route(
            Route::hook("leaky", "plugin:leaky")
                .secret("env:LEAKY_SECRET")
                .value("secrets", "{ other = \"env:LEAKY_OTHER_SECRET\" }")
                .text("public_url", "https://hooks.example.com/hooks/leaky")
                .plugins(&["probe"])
                .respond(),
        )
        .route(
            Route::hook("leaky-queue", "plugin:leaky")
                .secret("env:LEAKY_SECRET")
                .value("timeout_ms", "100")
                .plugins(&["probe"])
                .queue(),
        )
        .route(
            Route::hook("hubspot", "plugin:hubspot")
                .secret("env:HUBSPOT_SECRET")
                .text("public_url", HUBSPOT_URL)
                .plugins(&["probe"])
                .respond(),
        )
        .plugin_file("leaky", &crate::harness::plugin_wasm("leaky"))
        .plugin("hubspot")
        .plugin("probe")
        .env("LEAKY_SECRET", LEAKY_SECRET)
        .env("LEAKY_OTHER_SECRET", LEAKY_OTHER)
        .env("HUBSPOT_SECRET", HUBSPOT_SECRET)
        .server_settings("metrics_listen = \"127.0.0.1:0\"")
        .start()
}

/// Everything `leaky` could reach went into its answer, its log line and
/// the store; the secrets are in none of them (the harness also checks
/// the whole log when the daemon is dropped).
#[tokio::test]
async fn a_provider_plugin_cannot_get_its_secret_out() {
    let daemon = leaky_daemon();
    let (status, text) = post(&daemon, "/hooks/leaky", &[], "{}").await;
    assert_eq!(status, 200, "{text}");
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["kind"], "loot", "{seen}");
    // It did get MACs, which prove it asked: the host answered.
    let keyed = seen["raw_json"]["keyed"].to_string();
    assert!(keyed.contains("Ok("), "{keyed}");
    assert!(keyed.contains("no `secrets.secret`"), "{keyed}");
    daemon.assert_no_secret("the leaky plugin's answer", &text);
    for secret in [LEAKY_SECRET, LEAKY_OTHER] {
        assert!(!text.contains(secret));
        assert!(!text.contains(&hex::encode(secret)));
        assert!(!text.contains(&STANDARD.encode(secret)));
    }
    daemon.wait_for_log(|l| l["message"] == "provider plugin log");
    let get = client()
        .get(daemon.url("/hooks/leaky"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 200);
    daemon.assert_no_secret("the leaky plugin's handshake", &get.text().await.unwrap());

    let (status, text) = post(&daemon, "/hooks/leaky-queue", &[], "{}").await;
    assert_eq!(status, 202, "{text}");
    daemon.wait_plugin_calls("leaky-queue", 1);
    let db = daemon.config.parent().unwrap().join("data");
    for entry in std::fs::read_dir(&db).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            // The store's own transient files (a rollback journal) may go
            // between the listing and the read.
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", path.display()),
            };
            let text = String::from_utf8_lossy(&bytes);
            daemon.assert_no_secret(&format!("the store file {}", path.display()), &text);
        }
    }
}

/// A verifier that traps, spins or answers against its world is refused
/// (401 or 400, never 500) and counted; the listener goes on answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_verifiers_are_refused_and_counted() {
    let daemon = leaky_daemon();
    let mode = |m: &str| vec![("x-leaky-mode", m.to_owned())];
    let (status, text) = post(&daemon, "/hooks/leaky", &mode("trap"), "{}").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("trapped"), "{text}");
    let (status, text) = post(&daemon, "/hooks/leaky", &mode("bad-json"), "{}").await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = post(&daemon, "/hooks/leaky", &mode("status"), "{}").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("leaky wants a 500"), "{text}");

    // Spinning verifiers on one route while HubSpot's go on being served.
    let spinning: Vec<_> = (0..4)
        .map(|_| {
            let url = daemon.url("/hooks/leaky-queue");
            tokio::spawn(async move {
                let response = client()
                    .post(url)
                    .header("x-leaky-mode", "spin")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap())
            })
        })
        .collect();
    let body = contact_events();
    let timestamp = now_ms().to_string();
    let signature = hubspot_signature(HUBSPOT_SECRET, "POST", HUBSPOT_URL, &body, &timestamp);
    let (status, text) = post(
        &daemon,
        "/hooks/hubspot",
        &hubspot_headers(signature, &timestamp),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    for spin in spinning {
        let (status, text) = spin.await.unwrap();
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("deadline of 100 ms"), "{text}");
    }

    let samples = scrape(&client(), &metrics_url(&daemon)).await;
    let count = |route: &str, reason: &str| {
        samples
            .get(&format!(
                r#"wirehook_verification_failures_total{{route="{route}",reason="{reason}"}}"#
            ))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(count("leaky", "plugin_trap"), 1.0);
    assert_eq!(count("leaky", "plugin_bad_output"), 1.0);
    assert_eq!(count("leaky", "unauthorized"), 1.0);
    assert_eq!(count("leaky-queue", "plugin_timeout"), 4.0);
}

/// `wirehook check` loads a provider plugin like any route's and refuses
/// a missing one or a component for the other world; a reload swaps it,
/// compiling it again only when its bytes changed.
#[tokio::test]
async fn check_and_reload_of_a_provider_plugin() {
    let daemon = hubspot_daemon();
    let compilations = || {
        daemon
            .log_lines(|l| l["message"] == "provider plugin loaded")
            .len()
    };
    assert_eq!(compilations(), 1, "compiled once for its two routes");
    let output = daemon.cli(&["check"]);
    assert!(output.status.success(), "{output:?}");

    let plugins = daemon.plugins_dir();
    let hubspot = plugins.join("hubspot.wasm");
    // The other world's component in its place: check names the route.
    daemon.replace_file(
        &hubspot,
        &std::fs::read(crate::harness::plugin_wasm("probe")).unwrap(),
    );
    let output = daemon.cli(&["check"]);
    assert!(!output.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("route[0].provider") && said.contains("provider world"),
        "{said}"
    );
    // Reloading now keeps the running routes.
    daemon.signal("HUP");
    daemon.wait_for_log(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reload failed"))
    });
    let body = contact_events();
    let timestamp = now_ms().to_string();
    let signature = hubspot_signature(HUBSPOT_SECRET, "POST", HUBSPOT_URL, &body, &timestamp);
    let (status, text) = post(
        &daemon,
        "/hooks/hubspot",
        &hubspot_headers(signature.clone(), &timestamp),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");

    // A new public URL, then the real component back: the first reload
    // that succeeds has both.
    daemon.edit_config(|c| {
        c.replace(
            "hooks.example.com/hooks/hubspot\"",
            "hooks.example.com/v2/hubspot\"",
        )
    });
    daemon.replace_file(
        &hubspot,
        &std::fs::read(crate::harness::plugin_wasm("hubspot")).unwrap(),
    );
    daemon.signal("HUP");
    daemon.wait_for_log(|l| l["message"] == "reloaded");
    let (status, _) = post(
        &daemon,
        "/hooks/hubspot",
        &hubspot_headers(signature, &timestamp),
        &body,
    )
    .await;
    assert_eq!(status, 401, "signed over the old public URL");
    let moved = "https://hooks.example.com/v2/hubspot";
    let signature = hubspot_signature(HUBSPOT_SECRET, "POST", moved, &body, &timestamp);
    let (status, text) = post(
        &daemon,
        "/hooks/hubspot",
        &hubspot_headers(signature, &timestamp),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");

    // The table serving this has the component's first bytes again, and
    // the running one kept from before the failed reloads had them too.
    assert_eq!(compilations(), 1, "the same bytes are not compiled again");

    // Other bytes under the same name are compiled again.
    daemon.replace_file(
        &hubspot,
        &std::fs::read(crate::harness::plugin_wasm("leaky")).unwrap(),
    );
    daemon.signal("HUP");
    daemon.wait_for_nth(2, |l| l["message"] == "provider plugin loaded");
}
