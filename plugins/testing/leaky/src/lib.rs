//! `leaky`: a test fixture for the `provider` world that tries to get
//! its route's secret out: it looks in its environment, arguments and
//! files, asks the host for MACs and verdicts under every key name it can
//! think of, and returns all it found as an event and writes it to the
//! log and stderr. The daemon tests check that none of it is the secret.
//!
//! The header `x-leaky-mode` makes it misbehave instead: `trap` panics,
//! `spin` never returns, `bad-json` answers an event that is not JSON,
//! `status` refuses with a status outside the world's four. `remember`
//! keeps the body and answers with the one the instance kept before:
//! what one request could carry into another's answer if instances were
//! kept.

// The generated glue of `verify-mac` passes each list as pointer and length.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../../wit/provider", world: "provider" });

use wirehook::plugin::keyed;
use wirehook::plugin::provider_types::Hash;

struct Leaky;

/// The body of the last `remember` request this instance verified.
static REMEMBERED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn mode(req: &Request) -> &str {
    req.headers
        .iter()
        .find(|(name, _)| name == "x-leaky-mode")
        .map_or("leak", |(_, value)| value.as_str())
}

/// Everything the guest can reach that might hold the secret.
fn loot() -> serde_json::Value {
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let args: Vec<String> = std::env::args().collect();
    let files: Vec<String> = [
        "/",
        ".",
        "/proc/self/environ",
        "config.toml",
        "wirehook.toml",
    ]
    .iter()
    .map(|path| match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => e.to_string(),
    })
    .collect();
    let mut keyed_calls = Vec::new();
    for key in [None, Some("secret"), Some(""), Some("route"), Some("key")] {
        for alg in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
            let mac = keyed::hmac(key, alg, b"").map(|mac| keyed::hex_encode(&mac));
            keyed_calls.push(format!("{key:?} {mac:?}"));
        }
        let verdict = keyed::verify_mac(key, Hash::Sha256, b"", b"");
        keyed_calls.push(format!("{key:?} verify {verdict:?}"));
        let jwt = keyed::verify_jwt_hs256(key, "e30.e30.e30", 0);
        keyed_calls.push(format!("{key:?} jwt {jwt:?}"));
    }
    serde_json::json!({ "env": env, "args": args, "files": files, "keyed": keyed_calls })
}

impl Guest for Leaky {
    fn verify(req: Request) -> Result<Vec<DecodedEvent>, Rejection> {
        match mode(&req) {
            "trap" => panic!("leaky traps on purpose"),
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bad-json" => {
                return Ok(vec![DecodedEvent {
                    kind: "bad".to_owned(),
                    raw_json: "{not json".to_owned(),
                    provider_id: None,
                }]);
            }
            "remember" => {
                let body = String::from_utf8_lossy(&req.body).into_owned();
                let previous = REMEMBERED.lock().unwrap().replace(body);
                return Ok(vec![DecodedEvent {
                    kind: "remember".to_owned(),
                    raw_json: serde_json::json!({ "previous": previous }).to_string(),
                    provider_id: None,
                }]);
            }
            "status" => {
                return Err(Rejection {
                    status: 500,
                    reason: "leaky wants a 500".to_owned(),
                });
            }
            _ => {}
        }
        let loot = loot().to_string();
        keyed::log(&loot);
        eprintln!("{loot}");
        Ok(vec![DecodedEvent {
            kind: "loot".to_owned(),
            raw_json: loot,
            provider_id: None,
        }])
    }

    fn handshake(_req: Request) -> Result<Option<HandshakeAnswer>, Rejection> {
        Ok(Some(HandshakeAnswer {
            content_type: "application/json".to_owned(),
            body: loot().to_string(),
        }))
    }

    fn sign(_payload: Vec<u8>, _now_ms: u64, _url: Option<String>) -> Result<Signed, SignError> {
        Err(SignError::Unsupported)
    }
}

export!(Leaky);
