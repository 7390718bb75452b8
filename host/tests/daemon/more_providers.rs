//! Twilio, Vonage, Telegram, Slack, Stripe and GitHub through the real
//! daemon and the `probe` plugin: each request signed the provider's way
//! by code here (not wirehook's signers), then forged, stale and tampered
//! copies refused with the provider's status.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::harness::{Daemon, DaemonBuilder, Route, now};

const TWILIO_TOKEN: &str = "twilio-auth-token-0123456789abcdef";
const TWILIO_URL: &str = "https://hooks.example.com/hooks/twilio";
const VONAGE_SECRET: &str = "vonage-signature-secret-0123456789";
const TELEGRAM_TOKEN: &str = "tg-webhook_Secret-42";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const STRIPE_SECRET: &str = "whsec_test_5a1d8e0c2f";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";

fn daemon() -> Daemon {
    let route = |provider: &str, var: &str| {
        Route::new(provider, &format!("/hooks/{provider}"), provider)
            .secret(&format!("env:{var}"))
            .plugins(&["probe"])
            .mode("respond")
    };
    let routes = [
        route("twilio", "T_TWILIO").text("public_url", TWILIO_URL),
        route("vonage", "T_VONAGE"),
        route("telegram", "T_TELEGRAM"),
        route("slack", "T_SLACK"),
        route("stripe", "T_STRIPE"),
        route("github", "T_GITHUB"),
    ]
    .map(|route| route.to_string())
    .join("\n");
    DaemonBuilder::new(&routes)
        .plugin("probe")
        .env("T_TWILIO", TWILIO_TOKEN)
        .env("T_VONAGE", VONAGE_SECRET)
        .env("T_TELEGRAM", TELEGRAM_TOKEN)
        .env("T_SLACK", SLACK_SECRET)
        .env("T_STRIPE", STRIPE_SECRET)
        .env("T_GITHUB", GITHUB_SECRET)
        .start()
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// POSTs `body` as `content_type` to `path` (with `query`).
async fn send(
    daemon: &Daemon,
    path: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let mut request = crate::harness::client()
        .post(daemon.url(path))
        .header("content-type", content_type)
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// What `probe` saw, asserting 200.
fn seen(answer: (u16, String)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    serde_json::from_str(&answer.1).unwrap()
}

/// The first plugin call logged for `route`.
fn first_plugin_call(daemon: &Daemon, route: &str) -> Value {
    daemon.wait_for_nth(1, |line| {
        line["route"] == route && line["message"] == "plugin handled event"
    })
}

fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    parts.iter().for_each(|p| mac.update(p));
    mac.finalize().into_bytes().to_vec()
}

/// Twilio's signature: the URL, then each field's name and value sorted.
fn twilio_signature(token: &str, url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        form.append_pair(name, value);
    }
    form.finish()
}

#[tokio::test]
async fn twilio_forms_signed_over_the_public_url() {
    let daemon = daemon();
    let incoming = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("From", "whatsapp:+14155550100"),
        ("To", "whatsapp:+14155238886"),
        ("Body", "Hello & welcome"),
        ("ProfileName", "Ada"),
        ("NumMedia", "0"),
    ];
    let signature = twilio_signature(TWILIO_TOKEN, TWILIO_URL, &incoming);
    let headers = [h("X-Twilio-Signature", &signature)];
    let body = form(&incoming);
    let event = seen(send(&daemon, "/hooks/twilio", FORM, &headers, &body).await);
    assert_eq!(event["kind"], "incoming-message");
    assert_eq!(
        event["source"]["delivery_id"],
        "SM0123456789abcdef0123456789abcdef"
    );
    assert_eq!(event["payload"]["type"], "message-received");
    assert_eq!(event["payload"]["text"], "Hello & welcome");
    assert_eq!(event["payload"]["contact"]["phone"], "+14155550100");
    assert_eq!(event["payload"]["contact"]["name"], "Ada");
    // The fields as a JSON object, in the order they came.
    assert_eq!(event["raw_json"]["Body"], "Hello & welcome");
    let keys: Vec<&String> = event["raw_json"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), incoming.len());

    let status = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("MessageStatus", "delivered"),
    ];
    let headers = [h(
        "X-Twilio-Signature",
        &twilio_signature(TWILIO_TOKEN, TWILIO_URL, &status),
    )];
    let event = seen(send(&daemon, "/hooks/twilio", FORM, &headers, &form(&status)).await);
    assert_eq!(event["payload"]["type"], "message-status");
    assert_eq!(event["payload"]["status"], "delivered");
    assert_eq!(
        event["source"]["delivery_id"],
        "SM0123456789abcdef0123456789abcdef-delivered"
    );

    // Forged (another token), tampered (a field changed), signed for
    // another URL (the one wirehook sees): each 401.
    let forged = [h(
        "X-Twilio-Signature",
        &twilio_signature("another-token", TWILIO_URL, &incoming),
    )];
    let tampered = body.replace("Ada", "Eve");
    let elsewhere = [h(
        "X-Twilio-Signature",
        &twilio_signature(TWILIO_TOKEN, &daemon.url("/hooks/twilio"), &incoming),
    )];
    let good = [h("X-Twilio-Signature", &signature)];
    for (headers, body) in [(&forged, &body), (&good, &tampered), (&elsewhere, &body)] {
        let (status, _) = send(&daemon, "/hooks/twilio", FORM, headers, body).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn vonage_bearer_jwt_with_the_body_hash() {
    let daemon = daemon();
    let body = r#"{"channel":"whatsapp","message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900000","from":"447700900001","timestamp":"2025-02-03T12:14:25Z","profile":{"name":"Jane Smith"},"message_type":"text","text":"Hi"}"#;
    let token = |secret: &str, iat: u64, body: &str| {
        let claims = json!({
            "iat": iat,
            "jti": "c5ba8f24-1a14-4c10-bfdf-3fbe8ce511b5",
            "iss": "Vonage",
            "payload_hash": hex::encode(Sha256::digest(body.as_bytes())),
            "api_key": "abcd1234",
            "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        });
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        [h("Authorization", &format!("Bearer {jwt}"))]
    };
    let good = token(VONAGE_SECRET, now(), body);
    let event = seen(send(&daemon, "/hooks/vonage", JSON, &good, body).await);
    assert_eq!(event["kind"], "inbound-message");
    assert_eq!(event["payload"]["type"], "message-received");
    assert_eq!(event["payload"]["text"], "Hi");
    assert_eq!(event["payload"]["contact"]["name"], "Jane Smith");
    assert_eq!(
        event["source"]["delivery_id"],
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
    );
    let status = r#"{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900001","from":"447700900000","timestamp":"2025-02-03T12:14:25Z","status":"read","channel":"whatsapp"}"#;
    let event = seen(
        send(
            &daemon,
            "/hooks/vonage",
            JSON,
            &token(VONAGE_SECRET, now(), status),
            status,
        )
        .await,
    );
    assert_eq!(event["payload"]["type"], "message-status");
    assert_eq!(event["payload"]["status"], "read");

    let forged = token("not-the-secret", now(), body);
    let stale = token(VONAGE_SECRET, now() - 600, body);
    let tampered = body.replace("Hi", "Bye");
    for (headers, body) in [(&forged, body), (&stale, body), (&good, tampered.as_str())] {
        let (status, _) = send(&daemon, "/hooks/vonage", JSON, headers, body).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn telegram_updates_with_the_secret_token() {
    let daemon = daemon();
    let update = r#"{"update_id":987654321,"message":{"message_id":42,"date":1733500000,"chat":{"id":555,"type":"private"},"from":{"id":555,"first_name":"Ada","last_name":"L"},"text":"where is my order?"}}"#;
    let good = [h("X-Telegram-Bot-Api-Secret-Token", TELEGRAM_TOKEN)];
    let event = seen(send(&daemon, "/hooks/telegram", JSON, &good, update).await);
    assert_eq!(event["kind"], "message");
    assert_eq!(event["source"]["delivery_id"], "987654321");
    assert_eq!(event["payload"]["type"], "message-received");
    assert_eq!(event["payload"]["text"], "where is my order?");
    assert_eq!(event["payload"]["conversation_id"], "555");
    assert_eq!(event["payload"]["contact"]["name"], "Ada L");

    let forged = [h("X-Telegram-Bot-Api-Secret-Token", "tg-webhook_Secret-43")];
    assert_eq!(
        send(&daemon, "/hooks/telegram", JSON, &forged, update)
            .await
            .0,
        401
    );
    assert_eq!(
        send(&daemon, "/hooks/telegram", JSON, &[], update).await.0,
        401
    );
    // A form is not what Telegram sends.
    assert_eq!(
        send(&daemon, "/hooks/telegram", FORM, &good, "a=1").await.0,
        415
    );
}

fn slack_headers(secret: &str, ts: u64, body: &str) -> [(String, String); 2] {
    let ts = ts.to_string();
    let digest = hmac_sha256(secret, &[b"v0:", ts.as_bytes(), b":", body.as_bytes()]);
    [
        h("X-Slack-Request-Timestamp", &ts),
        h("X-Slack-Signature", &format!("v0={}", hex::encode(digest))),
    ]
}

#[tokio::test]
async fn slack_events_commands_and_the_url_check() {
    let daemon = daemon();
    // The URL check is answered by wirehook and reaches no plugin.
    let check = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let answer = seen(
        send(
            &daemon,
            "/hooks/slack",
            JSON,
            &slack_headers(SLACK_SECRET, now(), check),
            check,
        )
        .await,
    );
    assert_eq!(
        answer,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    let event = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev08MFMKH6","event":{"type":"message","user":"U061F7AUR","text":"order 42 status?","channel":"C0LAN2Q65","ts":"1515449522.000016"}}"#;
    let seen_event = seen(
        send(
            &daemon,
            "/hooks/slack",
            JSON,
            &slack_headers(SLACK_SECRET, now(), event),
            event,
        )
        .await,
    );
    assert_eq!(seen_event["kind"], "message");
    assert_eq!(seen_event["source"]["delivery_id"], "Ev08MFMKH6");
    assert_eq!(seen_event["payload"]["text"], "order 42 status?");
    // The URL check came first: had it reached the plugin, its call
    // would be the first one logged.
    let first = first_plugin_call(&daemon, "slack");
    assert_eq!(first["delivery_id"], "Ev08MFMKH6");

    // A slash command: a form.
    let command = form(&[
        ("command", "/order"),
        ("text", "42"),
        ("user_id", "U2CERLKJA"),
        ("user_name", "roadrunner"),
        ("channel_id", "G8PSS9T3V"),
        ("trigger_id", "398738663015.47445629121"),
    ]);
    let seen_command = seen(
        send(
            &daemon,
            "/hooks/slack",
            FORM,
            &slack_headers(SLACK_SECRET, now(), &command),
            &command,
        )
        .await,
    );
    assert_eq!(seen_command["kind"], "slash_command");
    assert_eq!(seen_command["payload"]["text"], "/order 42");
    assert_eq!(seen_command["raw_json"]["user_name"], "roadrunner");

    let stale = slack_headers(SLACK_SECRET, now() - 400, event);
    let forged = slack_headers("another-secret", now(), event);
    let good = slack_headers(SLACK_SECRET, now(), event);
    let tampered = event.replace("42", "43");
    for (headers, body) in [
        (&stale, event),
        (&forged, event),
        (&good, tampered.as_str()),
    ] {
        assert_eq!(
            send(&daemon, "/hooks/slack", JSON, headers, body).await.0,
            401
        );
    }
}

#[tokio::test]
async fn stripe_events_with_rotating_signatures() {
    let daemon = daemon();
    let event = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_1"}}}"#;
    let header = |secret: &str, t: u64, body: &str| {
        let t = t.to_string();
        let digest = hmac_sha256(secret, &[t.as_bytes(), b".", body.as_bytes()]);
        format!("t={t},v1={}", hex::encode(digest))
    };
    // During a roll: the old secret's signature first, then the new one's.
    let rolling = format!(
        "{},v1={}",
        header("whsec_old", now(), event),
        header(STRIPE_SECRET, now(), event)
            .split_once(",v1=")
            .unwrap()
            .1
    );
    let seen_event = seen(
        send(
            &daemon,
            "/hooks/stripe",
            JSON,
            &[h("Stripe-Signature", &rolling)],
            event,
        )
        .await,
    );
    assert_eq!(seen_event["kind"], "checkout.session.completed");
    assert_eq!(
        seen_event["source"]["delivery_id"],
        "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    );
    assert_eq!(seen_event["payload"]["type"], "other");

    let stale = [h(
        "Stripe-Signature",
        &header(STRIPE_SECRET, now() - 400, event),
    )];
    let forged = [h("Stripe-Signature", &header("whsec_other", now(), event))];
    let good = [h("Stripe-Signature", &header(STRIPE_SECRET, now(), event))];
    let tampered = event.replace("cs_1", "cs_2");
    for (headers, body) in [
        (&stale, event),
        (&forged, event),
        (&good, tampered.as_str()),
    ] {
        assert_eq!(
            send(&daemon, "/hooks/stripe", JSON, headers, body).await.0,
            401
        );
    }
    // Stripe sends JSON only: a form is refused as every such provider does.
    assert_eq!(
        send(&daemon, "/hooks/stripe", FORM, &good, event).await.0,
        415
    );
}

#[tokio::test]
async fn github_kind_and_delivery_from_headers_and_ping_answered() {
    let daemon = daemon();
    let headers = |secret: &str, event: &str, body: &str| {
        let digest = hmac_sha256(secret, &[body.as_bytes()]);
        let delivery = if event == "ping" {
            "0d3f7a6e-cc78-11e3-81ab-4c9367dc0958"
        } else {
            "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        };
        [
            h(
                "X-Hub-Signature-256",
                &format!("sha256={}", hex::encode(digest)),
            ),
            h("X-GitHub-Event", event),
            h("X-GitHub-Delivery", delivery),
        ]
    };
    let ping = r#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (status, answer) = send(
        &daemon,
        "/hooks/github",
        JSON,
        &headers(GITHUB_SECRET, "ping", ping),
        ping,
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let issue = r#"{"action":"opened","issue":{"number":42,"title":"Order stuck"}}"#;
    let event = seen(
        send(
            &daemon,
            "/hooks/github",
            JSON,
            &headers(GITHUB_SECRET, "issues", issue),
            issue,
        )
        .await,
    );
    assert_eq!(event["kind"], "issues");
    assert_eq!(
        event["source"]["delivery_id"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
    assert_eq!(event["raw_json"]["issue"]["number"], 42);
    // The ping came first: had it reached the plugin, its call would be
    // the first one logged.
    let first = first_plugin_call(&daemon, "github");
    assert_eq!(first["delivery_id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");

    let forged = headers("not it", "issues", issue);
    let good = headers(GITHUB_SECRET, "issues", issue);
    let tampered = issue.replace("42", "43");
    for (headers, body) in [(&forged, issue), (&good, tampered.as_str())] {
        assert_eq!(
            send(&daemon, "/hooks/github", JSON, headers, body).await.0,
            401
        );
    }
}
