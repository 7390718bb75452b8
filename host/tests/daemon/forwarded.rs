//! Who the client is, attacked: forged `X-Forwarded-For` variants sent
//! through a trusted proxy (the test is the proxy, on 127.0.0.1), and IPv4
//! clients of a dual-stack `[::]` listener matched against IPv4 entries.

use crate::harness::{Daemon, DaemonBuilder, Route};

/// The one address the `listed` route lets in (OneRoute's sender).
const LISTED: &str = "174.138.104.128";

/// The `listed` route, letting in `allow_ips` (TOML).
fn listed(allow_ips: &str) -> Route {
    Route::hook("listed", "goflow")
        .secret("env:T_GOFLOW")
        .value("allow_ips", allow_ips)
        .plugins(&["probe"])
        .respond()
}

fn daemon(allow_ips: &str) -> DaemonBuilder {
    DaemonBuilder::new("")
        .route(listed(allow_ips))
        .plugin("probe")
        .env("T_GOFLOW", "tok")
        .server_settings(r#"trusted_proxies = ["127.0.0.1/32"]"#)
}

/// Posts a goflow call to `url` with these `X-Forwarded-For` lines, as the
/// proxy in front of wirehook would; its status.
async fn forward(url: &str, lines: &[&str]) -> u16 {
    let mut request = crate::harness::client()
        .post(url)
        .header("authorization", "Token tok")
        .json(&crate::goflow::call_webhook("CU001"));
    for line in lines {
        request = request.header("x-forwarded-for", *line);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The `remote` of the `n`th refusal of the `listed` route.
fn refused_remote(daemon: &Daemon, n: usize) -> String {
    let line = daemon.wait_refused("listed", n);
    assert_eq!(line["status"], 403, "{line}");
    line["remote"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forged_forwarded_for_behind_a_trusted_proxy_is_refused() {
    let daemon = daemon(&format!("[\"{LISTED}/32\"]")).start();
    let url = daemon.url("/hooks/listed");
    // What the proxy vouches for, in each form proxies write.
    let mut allowed = 0;
    for line in [
        LISTED.to_owned(),
        format!("{LISTED}:41234"),
        format!("[::ffff:{LISTED}]:443"),
        format!("unknown, 203.0.113.9, {LISTED}"),
    ] {
        assert_eq!(forward(&url, &[&line]).await, 200, "{line}");
        allowed += 1;
    }
    // The client wrote the allowed address; the proxy appended the real
    // one (or a hop that is no address): never the client's word.
    let forged = [
        (format!("{LISTED}, unknown"), "unknown"),
        (format!("{LISTED}, _hidden"), "unknown"),
        (format!("{LISTED}, 203.0.113.9:5555"), "203.0.113.9"),
        (format!("{LISTED}, [2001:db8::7]:443"), "2001:db8::7"),
        (format!("{LISTED}, [2001:db8::7]"), "2001:db8::7"),
        (format!("{LISTED}, ::ffff:203.0.113.9"), "203.0.113.9"),
        (format!("{LISTED}, garbage:port"), "unknown"),
    ];
    for (n, (line, remote)) in forged.iter().enumerate() {
        assert_eq!(forward(&url, &[line]).await, 403, "{line}");
        assert_eq!(refused_remote(&daemon, n + 1), *remote, "{line}");
    }
    // A second header line is later in the same list.
    let n = forged.len() + 1;
    assert_eq!(forward(&url, &[LISTED, "unknown"]).await, 403);
    assert_eq!(refused_remote(&daemon, n), "unknown");
    assert_eq!(forward(&url, &[LISTED, "203.0.113.9"]).await, 403);
    assert_eq!(refused_remote(&daemon, n + 1), "203.0.113.9");
    daemon.wait_plugin_calls("listed", allowed);
    assert_eq!(daemon.plugin_calls("listed"), allowed);
}

#[tokio::test]
async fn a_dual_stack_listener_matches_ipv4_entries() {
    // 127.0.0.1 is let in directly; LISTED through the proxy at 127.0.0.1.
    let daemon = daemon(&format!("[\"127.0.0.1/32\", \"{LISTED}/32\"]"))
        .listen("[::]:0")
        .start();
    assert!(daemon.addr.is_ipv6(), "{}", daemon.addr);
    // An IPv4 client: the listener sees ::ffff:127.0.0.1.
    let url = format!("http://127.0.0.1:{}/hooks/listed", daemon.addr.port());
    assert_eq!(forward(&url, &[]).await, 200);
    assert_eq!(forward(&url, &[LISTED]).await, 200);
    // The proxy's IPv4 entry in trusted_proxies matched, so the hop it
    // vouches for is the client, and it is logged in IPv4 form.
    assert_eq!(forward(&url, &["203.0.113.9"]).await, 403);
    assert_eq!(refused_remote(&daemon, 1), "203.0.113.9");
    daemon.wait_plugin_calls("listed", 2);
}

#[tokio::test]
async fn a_dual_stack_listener_logs_ipv4_peers_in_ipv4_form() {
    let daemon = DaemonBuilder::new("")
        .route(listed("[\"10.0.0.0/8\"]"))
        .plugin("probe")
        .env("T_GOFLOW", "tok")
        .listen("[::]:0")
        .start();
    let url = format!("http://127.0.0.1:{}/hooks/listed", daemon.addr.port());
    assert_eq!(forward(&url, &[]).await, 403);
    assert_eq!(refused_remote(&daemon, 1), "127.0.0.1");
    // Without trusted proxies the header is the client's word.
    assert_eq!(forward(&url, &["10.1.2.3"]).await, 403);
    assert_eq!(refused_remote(&daemon, 2), "127.0.0.1");
}
