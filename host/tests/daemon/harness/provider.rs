//! What the provider plugins' tests share: posting a request as a
//! provider would, and `wirehook sign --provider plugin:NAME` against a
//! route.

use std::path::Path;

use serde_json::Value;

use super::{COMPILE_WAIT, Daemon, client, output, wirehook};

/// Milliseconds since the Unix epoch, as providers stamp requests.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// POSTs `body` with `headers` to the daemon's `path`: the status and
/// the body of the answer.
pub async fn post(
    daemon: &Daemon,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut request = client().post(daemon.url(path)).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The request `wirehook sign --provider plugin:NAME` prints for
/// `payload`, signed by the component at `wasm` with `secret`: headers
/// and body.
pub fn wirehook_sign(
    name: &str,
    wasm: &Path,
    secret: &str,
    payload: &str,
) -> (Vec<(String, String)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload.json");
    std::fs::write(&file, payload).unwrap();
    let output = output(
        wirehook()
            .args(["sign", "--provider", &format!("plugin:{name}"), "--wasm"])
            .arg(wasm)
            .args(["--secret", secret])
            .arg(&file)
            .env("RUST_LOG", "off"),
        COMPILE_WAIT,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "wirehook sign {name}: {stderr}");
    crate::sign::parse(&String::from_utf8(output.stdout).unwrap())
}

/// `wirehook sign` with the route's `secret` makes a request the route at
/// `path` accepts; the same signed with another key is refused. The
/// accepted request's reply, as JSON.
pub async fn signed_accepted_forged_refused(
    daemon: &Daemon,
    path: &str,
    (name, wasm): (&str, &Path),
    secret: &str,
    payload: &str,
) -> Value {
    let send = |(headers, body): (Vec<(String, String)>, String)| async move {
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.clone()))
            .collect();
        post(daemon, path, &headers, &body).await
    };
    let (status, text) = send(wirehook_sign(name, wasm, "not-the-route-secret", payload)).await;
    assert_eq!(status, 401, "{name}, forged: {text}");
    let (status, text) = send(wirehook_sign(name, wasm, secret, payload)).await;
    assert_eq!(status, 200, "{name}, signed by wirehook sign: {text}");
    serde_json::from_str(&text).unwrap()
}
