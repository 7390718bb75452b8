//! The fetcher against loopback servers: redirects, reserved headers, and
//! a resolver scripted to change its answer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::address::{Checked, Lookup};
use super::*;

/// Every wait in these tests ends: the fetcher's own timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Answers with what it was sent: method, body and the headers tests ask
/// about.
async fn echo(method: Method, headers: HeaderMap, body: Bytes) -> String {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    json!({
        "method": method.as_str(),
        "body": String::from_utf8_lossy(&body),
        "content-type": header("content-type"),
        "authorization": header("authorization"),
        "cookie": header("cookie"),
        "x-trace": header("x-trace"),
    })
    .to_string()
}

fn fetcher() -> Fetcher {
    Fetcher::new(TIMEOUT, 1 << 20).unwrap()
}

fn grant(entry: &str) -> Vec<Origin> {
    vec![Origin::parse(entry).unwrap()]
}

fn request(method: &str, url: String, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    Request {
        method: method.to_owned(),
        url,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.map(|b| b.as_bytes().to_vec()),
    }
}

fn json_of(response: &Fetched) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test]
async fn redirects_change_method_and_body_the_way_browsers_do() {
    let redirect = |status: StatusCode| {
        any(move || async move { (status, [(header::LOCATION, "/echo")]).into_response() })
    };
    let server = serve(
        Router::new()
            .route("/301", redirect(StatusCode::MOVED_PERMANENTLY))
            .route("/302", redirect(StatusCode::FOUND))
            .route("/303", redirect(StatusCode::SEE_OTHER))
            .route("/307", redirect(StatusCode::TEMPORARY_REDIRECT))
            .route("/308", redirect(StatusCode::PERMANENT_REDIRECT))
            .route("/echo", any(echo)),
    )
    .await;
    let grants = grant(&format!("http://{server}"));
    let fetcher = fetcher();
    // (status, method sent) → method and body that arrive.
    for (status, sent, arrived, keeps_body) in [
        (303, "POST", "GET", false),
        (303, "PUT", "GET", false),
        (301, "POST", "GET", false),
        (302, "POST", "GET", false),
        (301, "PUT", "PUT", true),
        (302, "DELETE", "DELETE", true),
        (307, "POST", "POST", true),
        (308, "PUT", "PUT", true),
    ] {
        let response = fetcher
            .fetch(
                &grants,
                request(
                    sent,
                    format!("http://{server}/{status}"),
                    &[
                        ("content-type", "application/json"),
                        ("authorization", "Bearer s3cret"),
                    ],
                    Some(r#"{"a":1}"#),
                ),
            )
            .await
            .unwrap();
        let seen = json_of(&response);
        let case = format!("{status} {sent}: {seen}");
        assert_eq!(seen["method"], arrived, "{case}");
        if keeps_body {
            assert_eq!(seen["body"], r#"{"a":1}"#, "{case}");
            assert_eq!(seen["content-type"], "application/json", "{case}");
        } else {
            assert_eq!(seen["body"], "", "{case}");
            assert_eq!(seen["content-type"], Value::Null, "{case}");
        }
        // The same origin keeps its credentials.
        assert_eq!(seen["authorization"], "Bearer s3cret", "{case}");
    }
}

#[tokio::test]
async fn credentials_stay_with_their_origin() {
    let other = serve(Router::new().route("/echo", any(echo))).await;
    let first = serve(Router::new().route(
        "/away",
        any(move || async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("http://{other}/echo"))],
            )
                .into_response()
        }),
    ))
    .await;
    let grants = [
        Origin::parse(&format!("http://{first}")).unwrap(),
        Origin::parse(&format!("http://{other}")).unwrap(),
    ];
    let response = fetcher()
        .fetch(
            &grants,
            request(
                "POST",
                format!("http://{first}/away"),
                &[
                    ("Authorization", "Bearer s3cret"),
                    ("Cookie", "session=s3cret"),
                    ("X-Trace", "t-1"),
                ],
                Some("body"),
            ),
        )
        .await
        .unwrap();
    let seen = json_of(&response);
    assert_eq!(seen["authorization"], Value::Null, "{seen}");
    assert_eq!(seen["cookie"], Value::Null, "{seen}");
    assert_eq!(seen["x-trace"], "t-1", "{seen}");
    assert_eq!(seen["method"], "POST", "{seen}");
    assert_eq!(seen["body"], "body", "{seen}");
}

#[tokio::test]
async fn redirects_stop_at_the_limit() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    // `/hop/N` redirects to `/hop/N-1`; `/hop/0` answers.
    let server = serve(Router::new().route(
        "/hop/{n}",
        get(move |Path(n): Path<usize>| async move {
            counter.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                "arrived".into_response()
            } else {
                let next = format!("/hop/{}", n - 1);
                (StatusCode::FOUND, [(header::LOCATION, next)]).into_response()
            }
        }),
    ))
    .await;
    let grants = grant(&format!("http://{server}"));
    let fetcher = fetcher();
    let hops = |n: usize| request("GET", format!("http://{server}/hop/{n}"), &[], None);
    let response = fetcher.fetch(&grants, hops(MAX_REDIRECTS)).await.unwrap();
    assert_eq!(response.body, b"arrived");
    assert_eq!(requests.swap(0, Ordering::SeqCst), MAX_REDIRECTS + 1);
    let error = fetcher
        .fetch(&grants, hops(MAX_REDIRECTS + 1))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, FetchError::TooManyRedirects), "{error}");
    assert_eq!(
        error.to_string(),
        format!("more than {MAX_REDIRECTS} redirects")
    );
    // The redirect past the limit is not followed.
    assert_eq!(requests.load(Ordering::SeqCst), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn plugins_may_not_set_host_or_connection_headers() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let server = serve(Router::new().route(
        "/echo",
        any(move |method, headers, body| {
            counter.fetch_add(1, Ordering::SeqCst);
            echo(method, headers, body)
        }),
    ))
    .await;
    let grants = grant(&format!("http://{server}"));
    let fetcher = fetcher();
    for (name, value) in [
        ("Host", "169.254.169.254"),
        ("host", "localhost"),
        ("Connection", "close"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Content-Length", "0"),
    ] {
        let error = fetcher
            .fetch(
                &grants,
                request(
                    "GET",
                    format!("http://{server}/echo"),
                    &[(name, value)],
                    None,
                ),
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(matches!(error, FetchError::ReservedHeader(_)), "{error}");
        assert!(
            error
                .to_string()
                .contains("is set by wirehook, not by plugins"),
            "{error}"
        );
    }
    assert_eq!(requests.load(Ordering::SeqCst), 0);
    // Other headers go through.
    let response = fetcher
        .fetch(
            &grants,
            request(
                "GET",
                format!("http://{server}/echo"),
                &[("X-Trace", "t-2")],
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(json_of(&response)["x-trace"], "t-2");
}

/// Answers each name from a fixed table.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl Lookup for Table {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let answer = self.0.get(host.as_str()).cloned().unwrap_or_default();
        Box::pin(async move { Ok(answer) })
    }
}

/// Gives each answer in turn, the last one from then on, and counts the
/// lookups.
struct Rebinding {
    answers: Mutex<Vec<IpAddr>>,
    lookups: Arc<AtomicUsize>,
}

impl Lookup for Rebinding {
    fn lookup(
        &self,
        _host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0]
        };
        Box::pin(async move { Ok(vec![answer]) })
    }
}

#[tokio::test]
async fn a_granted_name_of_a_special_address_is_refused() {
    let names = [
        ("metadata.test", "169.254.169.254"),
        ("nat64.test", "64:ff9b::a9fe:a9fe"),
        ("nat64-local.test", "64:ff9b:1::a9fe:a9fe"),
        ("sixtofour.test", "2002:a9fe:a9fe::1"),
        ("compatible.test", "::169.254.169.254"),
        ("benchmark.test", "198.18.0.1"),
        ("site-local.test", "fec0::1"),
        ("mapped.test", "::ffff:10.0.0.1"),
    ];
    let resolver = Checked {
        lookup: Table(
            names
                .iter()
                .map(|(name, ip)| (*name, vec![ip.parse().unwrap()]))
                .collect(),
        ),
        permitted: is_public,
    };
    // The resolver alone: a broken table must not send a test's traffic
    // off this machine.
    for (name, ip) in names {
        let error = resolver
            .resolve(name.parse().unwrap())
            .await
            .err()
            .unwrap_or_else(|| panic!("{name} ({ip}) was resolved"))
            .to_string();
        assert_eq!(
            error,
            format!(
                "`{name}` resolves only to non-public addresses ({})",
                ip.parse::<IpAddr>().unwrap()
            )
        );
    }
    // Through the fetcher: granted by name, refused by address.
    let fetcher = Fetcher::with_resolver(TIMEOUT, 1 << 20, Arc::new(resolver)).unwrap();
    let error = fetcher
        .fetch(
            &grant("http://metadata.test"),
            request(
                "GET",
                "http://metadata.test/latest/meta-data".into(),
                &[],
                None,
            ),
        )
        .await
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("`metadata.test` resolves only to non-public addresses (169.254.169.254)"),
        "{error}"
    );
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_address() {
    let server = serve(Router::new().route("/ok", get(|| async { "checked" }))).await;
    let checked = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // Nothing listens there: a second lookup's answer would be refused.
    let rebound = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let lookups = Arc::new(AtomicUsize::new(0));
    let resolver = Checked {
        lookup: Rebinding {
            answers: Mutex::new(vec![checked, rebound]),
            lookups: lookups.clone(),
        },
        // Stands in for "public": only the first answer passes.
        permitted: |ip| ip == IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let fetcher = Fetcher::with_resolver(TIMEOUT, 1 << 20, Arc::new(resolver)).unwrap();
    let port = server.port();
    let grants = grant(&format!("http://rebind.test:{port}"));
    let response = fetcher
        .fetch(
            &grants,
            request("GET", format!("http://rebind.test:{port}/ok"), &[], None),
        )
        .await
        .unwrap();
    assert_eq!(response.body, b"checked");
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        1,
        "one lookup, checked and used"
    );
    // A fresh client looks up again and gets the rebound answer: refused
    // by the check, never connected to.
    let resolver = Checked {
        lookup: Rebinding {
            answers: Mutex::new(vec![rebound]),
            lookups: lookups.clone(),
        },
        permitted: |ip| ip == IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let fetcher = Fetcher::with_resolver(TIMEOUT, 1 << 20, Arc::new(resolver)).unwrap();
    let error = fetcher
        .fetch(
            &grants,
            request("GET", format!("http://rebind.test:{port}/ok"), &[], None),
        )
        .await
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("non-public addresses (127.0.0.2)"),
        "{error}"
    );
}
