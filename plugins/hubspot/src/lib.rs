//! `hubspot`: a provider plugin for HubSpot's webhooks (signature v3).
//!
//! HubSpot signs `method + URL + body + timestamp` with the app's client
//! secret: `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256 of that,
//! `X-HubSpot-Request-Timestamp` the time in milliseconds, refused when
//! more than five minutes off. The URL is the one HubSpot called, the
//! route's `public_url`, with the query as received. The MAC is computed
//! and compared by the host (`keyed`): this plugin never holds the secret.
//!
//! A request carries a JSON array of events; each becomes one event of
//! its `subscriptionType` (`contact.creation`, `contact.propertyChange`),
//! with the event's own JSON and `eventId`.
//!
//! Route: `provider = "plugin:hubspot"`, `secret` = the app's client
//! secret, `public_url` = the webhook URL set in the HubSpot app.

// The generated glue of `verify-mac` passes each list as pointer and length.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "../../wit/provider", world: "provider" });

use serde_json::value::RawValue;
use wirehook::plugin::keyed;
use wirehook::plugin::provider_types::Hash;

const SIGNATURE: &str = "x-hubspot-signature-v3";
const TIMESTAMP: &str = "x-hubspot-request-timestamp";

/// How far the timestamp may be from now: HubSpot's five minutes.
const TOLERANCE_MS: u64 = 5 * 60 * 1000;

struct Hubspot;

fn refuse(status: u16, reason: &str) -> Rejection {
    Rejection {
        status,
        reason: reason.to_owned(),
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What HubSpot signs: method, URL, body, timestamp, back to back.
fn signed_bytes(method: &str, url: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(method.len() + url.len() + body.len() + timestamp.len());
    message.extend_from_slice(method.as_bytes());
    message.extend_from_slice(url.as_bytes());
    message.extend_from_slice(body);
    message.extend_from_slice(timestamp.as_bytes());
    message
}

/// The URL HubSpot called: the route's `public_url` and the query.
fn called_url(req: &Request) -> Result<String, Rejection> {
    let base = req.public_url.as_deref().ok_or_else(|| {
        refuse(
            401,
            "the route has no public_url to check the signature with",
        )
    })?;
    Ok(if req.query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", req.query)
    })
}

/// Each event of the array as its own JSON, under its subscription type.
fn decode(body: &[u8]) -> Result<Vec<DecodedEvent>, Rejection> {
    let events: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|_| refuse(400, "the body is not a JSON array of events"))?;
    events
        .into_iter()
        .map(|raw| {
            let event: serde_json::Value =
                serde_json::from_str(raw.get()).map_err(|_| refuse(400, "an event is not JSON"))?;
            let kind = event["subscriptionType"]
                .as_str()
                .ok_or_else(|| refuse(400, "an event has no subscriptionType"))?;
            let provider_id = match &event["eventId"] {
                serde_json::Value::Number(n) => Some(n.to_string()),
                serde_json::Value::String(s) => Some(s.clone()),
                _ => None,
            };
            Ok(DecodedEvent {
                kind: kind.to_owned(),
                raw_json: raw.get().to_owned(),
                provider_id,
            })
        })
        .collect()
}

impl Guest for Hubspot {
    fn verify(req: Request) -> Result<Vec<DecodedEvent>, Rejection> {
        if let Some(content_type) = header(&req, "content-type")
            && !content_type
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Err(refuse(415, "HubSpot sends JSON"));
        }
        let signature = header(&req, SIGNATURE)
            .ok_or_else(|| refuse(401, "missing `X-HubSpot-Signature-v3` header"))?;
        let timestamp = header(&req, TIMESTAMP)
            .ok_or_else(|| refuse(401, "missing `X-HubSpot-Request-Timestamp` header"))?;
        let sent_ms: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| refuse(401, "`X-HubSpot-Request-Timestamp` is not a number"))?;
        if keyed::now_ms().abs_diff(sent_ms) > TOLERANCE_MS {
            return Err(refuse(401, "timestamp outside the five minutes' tolerance"));
        }
        let expected = keyed::base64_decode(signature)
            .map_err(|_| refuse(401, "`X-HubSpot-Signature-v3` is not base64"))?;
        let url = called_url(&req)?;
        let message = signed_bytes(&req.method, &url, &req.body, timestamp);
        match keyed::verify_mac(None, Hash::Sha256, &message, &expected) {
            Ok(true) => decode(&req.body),
            Ok(false) => Err(refuse(401, "signature mismatch")),
            Err(reason) => Err(refuse(401, &reason)),
        }
    }

    fn handshake(_req: Request) -> Result<Option<HandshakeAnswer>, Rejection> {
        Ok(None)
    }

    fn sign(
        payload: Vec<u8>,
        now_ms: u64,
        public_url: Option<String>,
    ) -> Result<Signed, SignError> {
        let url = public_url
            .ok_or_else(|| SignError::Failed("the route needs a public_url".to_owned()))?;
        decode(&payload).map_err(|r| SignError::Failed(r.reason))?;
        let timestamp = now_ms.to_string();
        let message = signed_bytes("POST", &url, &payload, &timestamp);
        let mac = keyed::hmac(None, Hash::Sha256, &message).map_err(SignError::Failed)?;
        Ok(Signed {
            headers: vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                (
                    "X-HubSpot-Signature-v3".to_owned(),
                    keyed::base64_encode(&mac),
                ),
                ("X-HubSpot-Request-Timestamp".to_owned(), timestamp),
            ],
            body: payload,
        })
    }
}

export!(Hubspot);
