//! `{{name}}`: a wirehook provider plugin. A route with `provider =
//! "plugin:{{name}}"` runs `verify` on each request it receives; see
//! wit/provider.wit for every type.
//!
//! As written it checks `X-Signature`, the hex HMAC-SHA256 of the body
//! with the route's secret, and decodes a JSON object into one event of
//! its `type`. The secret stays with wirehook: `keyed` computes and
//! compares the MAC.

// The generated glue of `verify-mac` passes each list as pointer and length.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "wit", world: "provider" });

use wirehook::plugin::keyed;
use wirehook::plugin::provider_types::Hash;

const SIGNATURE: &str = "x-signature";

struct Provider;

fn refuse(status: u16, reason: &str) -> Rejection {
    Rejection {
        status,
        reason: reason.to_owned(),
    }
}

fn decode(body: &[u8]) -> Result<Vec<DecodedEvent>, Rejection> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| refuse(400, "the body is not JSON"))?;
    let kind = value["type"].as_str().unwrap_or("event").to_owned();
    let provider_id = value["id"].as_str().map(str::to_owned);
    Ok(vec![DecodedEvent {
        kind,
        raw_json: String::from_utf8_lossy(body).into_owned(),
        provider_id,
    }])
}

impl Guest for Provider {
    fn verify(req: Request) -> Result<Vec<DecodedEvent>, Rejection> {
        let signature = req
            .headers
            .iter()
            .find(|(name, _)| name == SIGNATURE)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| refuse(401, "missing `X-Signature` header"))?;
        let expected =
            keyed::hex_decode(signature).map_err(|_| refuse(401, "`X-Signature` is not hex"))?;
        match keyed::verify_mac(None, Hash::Sha256, &req.body, &expected) {
            Ok(true) => decode(&req.body),
            Ok(false) => Err(refuse(401, "signature mismatch")),
            Err(reason) => Err(refuse(401, &reason)),
        }
    }

    fn handshake(_req: Request) -> Result<Option<HandshakeAnswer>, Rejection> {
        Ok(None)
    }

    fn sign(payload: Vec<u8>, _now_ms: u64, _url: Option<String>) -> Result<Signed, SignError> {
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

export!(Provider);
