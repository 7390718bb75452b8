//! `hmac-provider`: the built-in `hmac` provider with its defaults, as a
//! provider plugin, so that the benchmarks can put the two side by side
//! on identical requests (bench/README.md, row 10). A fixture, never
//! shipped: a route wanting this scheme uses `provider = "hmac"`.
//!
//! As the built-in: `X-Signature` is the hex HMAC-SHA256 of the raw body,
//! computed and compared by the host (`keyed`: this plugin never holds the
//! secret); a content type, when sent, must be JSON; the body is one event
//! whose kind is its `type` or `event` field, else `hmac`.

// The generated glue of `verify-mac` passes each list as pointer and length.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../../wit/provider", world: "provider" });

use serde_json::Value;
use wirehook::plugin::keyed;
use wirehook::plugin::provider_types::Hash;

const SIGNATURE: &str = "x-signature";
const KIND: &str = "hmac";

struct HmacProvider;

fn refuse(status: u16, reason: String) -> Rejection {
    Rejection { status, reason }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `application/json` or any `+json` type, parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// The first of `keys` holding a non-empty string, a number or a boolean,
/// as text.
fn kind_of(body: &Value) -> Option<String> {
    ["type", "event"]
        .iter()
        .filter_map(|key| body.get(key))
        .find_map(|value| match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
}

fn decode(body: &[u8]) -> Result<Vec<DecodedEvent>, Rejection> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| refuse(400, format!("body is not JSON: {e}")))?;
    Ok(vec![DecodedEvent {
        kind: kind_of(&document).unwrap_or_else(|| KIND.to_owned()),
        raw_json: String::from_utf8_lossy(body).into_owned(),
        provider_id: None,
    }])
}

impl Guest for HmacProvider {
    fn verify(req: Request) -> Result<Vec<DecodedEvent>, Rejection> {
        let signature = header(&req, SIGNATURE)
            .ok_or_else(|| refuse(401, format!("missing `{SIGNATURE}` header")))?;
        let expected = keyed::hex_decode(signature)
            .map_err(|_| refuse(401, format!("`{SIGNATURE}` is not hex")))?;
        match keyed::verify_mac(None, Hash::Sha256, &req.body, &expected) {
            Ok(true) => {}
            Ok(false) => return Err(refuse(401, "signature does not match".to_owned())),
            Err(reason) => return Err(refuse(401, reason)),
        }
        if let Some(content_type) = header(&req, "content-type")
            && !is_json(content_type)
        {
            return Err(refuse(
                415,
                format!("content type `{content_type}` is not JSON"),
            ));
        }
        decode(&req.body)
    }

    fn handshake(_req: Request) -> Result<Option<HandshakeAnswer>, Rejection> {
        Ok(None)
    }

    fn sign(
        payload: Vec<u8>,
        _now_ms: u64,
        _public_url: Option<String>,
    ) -> Result<Signed, SignError> {
        let mac = keyed::hmac(None, Hash::Sha256, &payload).map_err(SignError::Failed)?;
        Ok(Signed {
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("X-Signature".to_owned(), keyed::hex_encode(&mac)),
            ],
            body: payload,
        })
    }
}

export!(HmacProvider);
