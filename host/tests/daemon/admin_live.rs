//! The admin API's history and live list: each attempt of a queued event
//! with its times, plugin and error; the plugins' latency of a queue
//! route in the stats; and the event stream a client reads as events
//! arrive and change.

use serde_json::Value;

use crate::admin_api::{ADMIN_TOKEN, admin_url, daemon, send, set_command, wait_status};
use crate::harness::{WAIT, client};

async fn get_json(url: &str) -> Value {
    let response = client()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_keeps_each_attempt_and_queue_routes_chart_their_latency() {
    let dir = tempfile::tempdir().unwrap();
    let command = dir.path().join("command");
    let daemon = daemon(&command, "");
    let base = admin_url(&daemon);
    set_command(&daemon, &command, "drop", 1);
    send(&daemon, 1, "Ann Attempts").await;
    let dead = wait_status(&base, "dead", 1).await;
    let id = dead[0]["id"].as_i64().unwrap();

    set_command(&daemon, &command, "record", 2);
    let replayed = client()
        .post(format!("{base}/api/events/{id}/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200);
    wait_status(&base, "delivered", 1).await;

    let one = get_json(&format!("{base}/api/events/{id}")).await;
    let attempts = one["attempts"].as_array().expect("attempts listed");
    assert_eq!(attempts.len(), 2, "{one}");
    assert_eq!(attempts[0]["number"], 1);
    assert_eq!(attempts[0]["outcome"], "dead");
    assert_eq!(attempts[0]["plugin"], "probe");
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("probe"),
        "{one}"
    );
    // The replay counts afresh, after the attempt it followed.
    assert_eq!(attempts[1]["number"], 1);
    assert_eq!(attempts[1]["outcome"], "delivered");
    assert!(attempts[1]["plugin"].is_null() && attempts[1]["error"].is_null());
    for a in attempts {
        let (started, finished) = (
            a["started_at_ms"].as_u64().unwrap(),
            a["finished_at_ms"].as_u64().unwrap(),
        );
        assert!(started >= one["record"]["received_at_ms"].as_u64().unwrap());
        assert!(finished >= started, "{a}");
    }
    assert!(attempts[1]["started_at_ms"].as_u64() >= attempts[0]["finished_at_ms"].as_u64());

    // The console's event page draws them as a timeline.
    let session = session(&base).await;
    let page = client()
        .get(format!("{base}/events/{id}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches(r#"<li class="attempt">"#).count(), 2, "{page}");

    // The plugins' latency of a queue route, from its attempts.
    let stats = get_json(&format!("{base}/api/stats?window=1h")).await;
    let buckets = stats["routes"][0]["buckets"].as_array().unwrap();
    let p50s: Vec<f64> = buckets
        .iter()
        .filter_map(|b| b["p50_ms"].as_f64())
        .collect();
    assert_eq!(p50s.len(), 1, "{stats}");
    assert!(p50s[0] > 0.0, "{stats}");
}

/// A console session's cookie, as a browser logging in gets it.
async fn session(base: &str) -> String {
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
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Reads the stream until a page satisfies `done`, returning it.
async fn next_page(
    stream: &mut reqwest::Response,
    buffer: &mut String,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if let Some(data) = frame.strip_prefix("event: page\ndata: ").map(str::trim_end) {
                    let page: Value = serde_json::from_str(data).unwrap();
                    if done(&page) {
                        return page;
                    }
                }
            }
            let chunk = stream
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the page came")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_sends_the_page_as_events_arrive_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let command = dir.path().join("command");
    let daemon = daemon(&command, "");
    let base = admin_url(&daemon);
    let refused = client()
        .get(format!("{base}/api/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // No deadline on the whole response: the stream outlives it, and
    // each page read has its own.
    let streaming = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let mut stream = streaming
        .get(format!("{base}/api/events/stream?route=queue"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    // At once: the page as it is, empty.
    let first = next_page(&mut stream, &mut buffer, |_| true).await;
    assert_eq!(first["events"].as_array().unwrap().len(), 0);

    // The event arrives, then is delivered: the stream sends the page
    // each time it changes (both at once when they fall together).
    send(&daemon, 1, "Lou Live").await;
    let arrived = next_page(&mut stream, &mut buffer, |page| {
        page["events"].as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(arrived["events"][0]["route"], "queue");
    // A delivery quicker than the page's next read arrives delivered.
    if arrived["events"][0]["status"] != "delivered" {
        next_page(&mut stream, &mut buffer, |page| {
            page["events"][0]["status"] == "delivered"
        })
        .await;
    }

    // A second event, delivered: on the same stream, newest first.
    send(&daemon, 2, "Max More").await;
    let both = next_page(&mut stream, &mut buffer, |page| {
        let events = page["events"].as_array().unwrap();
        events.len() == 2 && events.iter().all(|e| e["status"] == "delivered")
    })
    .await;
    assert!(both["events"][0]["id"].as_i64() > both["events"][1]["id"].as_i64());
}
