//! The requests the bad-signature attackers send, built once: a OneRoute
//! body of about 1 MiB signed with the wrong secret, a goflow call with
//! the wrong token.

use std::time::SystemTime;

use anyhow::anyhow;
use bytes::Bytes;
use wirehook::providers::Signed;

/// The size of the bad-signature OneRoute bodies: under the default body
/// limit, so that they are read and checked.
const ONEROUTE_BODY: usize = 1_000_000;

/// The secret the attacker signs with: not the route's.
const WRONG_SECRET: &str = "not-the-route-secret";

/// A request built once and sent again and again.
pub(super) struct Prepared {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// A OneRoute message event of about 1 MiB, many small values (what
/// parsing and re-serialising cost most on), signed with the wrong secret.
pub(super) fn oneroute_request(host: &str, path: &str) -> anyhow::Result<Prepared> {
    let mut messages = Vec::new();
    let mut size = 0;
    let mut n = 0u64;
    while size < ONEROUTE_BODY - 200 {
        let message =
            serde_json::json!({"id": format!("m-{n}"), "text": "where is my order?", "n": n});
        size += message.to_string().len() + 1;
        messages.push(message);
        n += 1;
    }
    let payload = serde_json::json!({
        "event": "newMessage",
        "message": {"id": "attack", "from": "+2348000000000", "text": "hello"},
        "history": messages,
    });
    let signed = sign("oneroute", WRONG_SECRET, &payload)?;
    prepared(host, path, signed)
}

/// A goflow call with a token that is not the route's.
pub(super) fn goflow_request(host: &str, path: &str, token: &str) -> anyhow::Result<Prepared> {
    let payload = serde_json::json!({
        "contact": {"uuid": "attacker", "name": "Mallory", "urn": "tel:+12065550000"},
        "flow": {"uuid": "5d4e7c0a-4f0e-4b8e-9d43-8f1b3c2a9e10", "name": "Order Status Checker"},
        "run": {"uuid": "attack"},
        "results": {"order": {"value": "CU001", "category": "Has Text"}},
        "input": {"text": "CU001"},
    });
    let wrong = format!("{token}-wrong");
    prepared(host, path, sign("goflow", &wrong, &payload)?)
}

fn sign(provider: &str, secret: &str, payload: &serde_json::Value) -> anyhow::Result<Signed> {
    let provider = crate::requests::bare_provider(provider, secret)?;
    provider
        .sign(payload.to_string().as_bytes(), SystemTime::now())
        .map_err(|reason| anyhow!("cannot sign: {reason}"))
}

fn prepared(host: &str, path: &str, signed: Signed) -> anyhow::Result<Prepared> {
    let mut headers = signed.headers;
    headers.push(("Host".to_owned(), host.to_owned()));
    Ok(Prepared {
        path: path.to_owned(),
        headers,
        body: Bytes::from(signed.body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oneroute_body_is_about_a_mebibyte_and_under_the_body_limit() {
        let request = oneroute_request("127.0.0.1:1", "/hooks/oneroute").unwrap();
        let len = request.body.len();
        assert!(
            (ONEROUTE_BODY - 1000..=ONEROUTE_BODY).contains(&len),
            "{len} bytes"
        );
        assert!(len < super::super::STALLED_LENGTH);
        assert!(
            request
                .headers
                .iter()
                .any(|(name, _)| name == "x-oneroute-signature")
        );
    }
}
