//! The delivery console in a real browser (headless Chromium over
//! WebDriver) against a real daemon: a wrong token refused, logging in,
//! a queued event seen going to delivered without a reload, a dead letter
//! opened, replayed and seen delivered, filters and search, and hostile
//! payloads shown as text with no script run. Screenshots are saved
//! under `target/console-screenshots/`.

use std::time::Duration;

use fantoccini::Locator;

use crate::admin_api::{ADMIN_TOKEN, admin_url, daemon, send, set_command, wait_status};
use crate::harness::browser::Browser;

const HOSTILE_SCRIPT: &str = "<script>window.__pwned = 1</script>";
const HOSTILE_IMG: &str = r#""><img src=x onerror="window.__pwned = 2">"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let Some(browser) = Browser::start("the_console_in_a_browser").await else {
        return;
    };
    let b = &browser.client;
    b.update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
        Some(Duration::from_secs(30)),
        Some(Duration::from_secs(30)),
        Some(Duration::ZERO),
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let command = dir.path().join("command");
    let daemon = daemon(&command, "");
    let base = admin_url(&daemon);
    let css = |s: &'static str| Locator::Css(s);

    // Not logged in: the login page. A wrong token is refused.
    b.goto(&format!("{base}/")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/login"));
    b.find(css("#token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    b.find(css("#login")).await.unwrap().click().await.unwrap();
    browser
        .text_until("#login-error", |t| t.contains("Wrong token"))
        .await;
    b.goto(&format!("{base}/")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/login"));

    // The right token: the event list, empty.
    b.find(css("#token"))
        .await
        .unwrap()
        .send_keys(ADMIN_TOKEN)
        .await
        .unwrap();
    b.find(css("#login")).await.unwrap().click().await.unwrap();
    browser.text_until("h1", |t| t == "Events").await;

    // A queued event appears and goes to delivered, without a reload.
    send(&daemon, 1, "Ben Haggerty").await;
    browser
        .text_until("#events tr:first-child", |t| {
            t.contains("delivered") && t.contains("call_webhook")
        })
        .await;
    browser.screenshot("events").await;

    // A dead letter: listed, opened, replayed, seen delivered.
    set_command(&daemon, &command, "drop", 1);
    send(&daemon, 2, "Dora Dead").await;
    let dead = wait_status(&base, "dead", 1).await;
    let dead_id = dead[0]["id"].as_i64().unwrap();
    set_command(&daemon, &command, "record", 2);
    b.goto(&format!("{base}/dead-letters")).await.unwrap();
    browser
        .text_until("#dead", |t| t.contains("probe asked to drop"))
        .await;
    browser.screenshot("dead-letters").await;
    b.find(css("#dead a")).await.unwrap().click().await.unwrap();
    browser.text_until("#event-status", |t| t == "dead").await;
    assert!(
        b.find(css("#body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Dora Dead")
    );
    b.find(css("#replay")).await.unwrap().click().await.unwrap();
    browser
        .text_until("#event-status", |t| t == "delivered")
        .await;
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&format!("/events/{dead_id}"))
    );
    browser.screenshot("event").await;

    // Hostile payloads render as text, and no script runs.
    send(&daemon, 3, HOSTILE_SCRIPT).await;
    send(&daemon, 4, HOSTILE_IMG).await;
    wait_status(&base, "delivered", 4).await;
    for (n, hostile) in [(3, HOSTILE_SCRIPT), (4, HOSTILE_IMG)] {
        b.goto(&format!("{base}/?q=c-{n}%22")).await.unwrap();
        let link = b.find(css("#events a")).await.unwrap();
        link.click().await.unwrap();
        let body = browser.text_until("#body", |t| t.contains("name")).await;
        assert!(body.contains(&hostile.replace('"', "\\\"")), "{body}");
        assert!(
            b.find_all(css("#body img, #body script"))
                .await
                .unwrap()
                .is_empty()
        );
        let pwned = b
            .execute("return window.__pwned === undefined;", vec![])
            .await
            .unwrap();
        assert_eq!(
            pwned,
            serde_json::Value::Bool(true),
            "a payload's script ran"
        );
    }
    browser.screenshot("hostile").await;

    // Filters and search.
    b.goto(&format!("{base}/")).await.unwrap();
    b.find(css("#filter-q"))
        .await
        .unwrap()
        .send_keys("dora dead")
        .await
        .unwrap();
    b.find(css("#apply")).await.unwrap().click().await.unwrap();
    // The list is live: its rows are redrawn as they change.
    browser
        .attrs_until("#events tr", "data-id", |ids| {
            ids == [Some(dead_id.to_string())]
        })
        .await;
    b.goto(&format!("{base}/?status=dead")).await.unwrap();
    assert!(b.find_all(css("#events tr")).await.unwrap().is_empty());
    b.goto(&format!("{base}/?status=delivered")).await.unwrap();
    assert_eq!(b.find_all(css("#events tr")).await.unwrap().len(), 4);

    // Routes and the last hour draw.
    b.goto(&format!("{base}/routes")).await.unwrap();
    browser.text_until("main", |t| t.contains("probe")).await;
    b.goto(&format!("{base}/charts")).await.unwrap();
    assert_eq!(b.find_all(css("svg.chart")).await.unwrap().len(), 1);
    browser.screenshot("charts").await;
    b.goto(&format!("{base}/")).await.unwrap();
    browser
        .text_until("#events", |t| t.contains("delivered"))
        .await;
    browser.screenshot("console").await;
}
