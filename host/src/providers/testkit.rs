//! Test helpers shared by the providers' unit and property tests: owned
//! requests, building a provider from a route, and the mutations a
//! signed request must not survive.

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

use super::{Decode, Provider, ProviderConfig, Rejection, Request, Signed};
use crate::config::provider::ProviderOptions;
use crate::event::Decoded;
use crate::secret::Secret;

/// A request that owns its parts.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: String,
    pub body: Vec<u8>,
}

impl Req {
    /// The POST a provider's `sign` describes.
    pub fn post(signed: &Signed) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &signed.headers {
            headers.append(
                HeaderName::try_from(name.as_str()).unwrap(),
                HeaderValue::try_from(value.as_str()).unwrap(),
            );
        }
        Self {
            method: Method::POST,
            headers,
            query: String::new(),
            body: signed.body.clone(),
        }
    }

    pub fn get(query: &str) -> Self {
        Self {
            method: Method::GET,
            headers: HeaderMap::new(),
            query: query.to_owned(),
            body: Vec::new(),
        }
    }

    pub fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            headers: &self.headers,
            query: &self.query,
            body: &self.body,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.insert(name, value.parse().unwrap());
        self
    }

    /// The proof headers: all but `Content-Type`.
    fn proof_headers(&self) -> Vec<HeaderName> {
        let mut names: Vec<_> = self
            .headers
            .keys()
            .filter(|name| *name != axum::http::header::CONTENT_TYPE)
            .cloned()
            .collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names
    }
}

/// Builds the provider of `options` with `secret`, as the daemon would.
pub fn provider(options: ProviderOptions, secret: &str) -> Arc<dyn Provider> {
    super::build(&ProviderConfig {
        options: &options,
        secret: Some(Secret::new(secret.as_bytes())),
        slow_checks: super::SlowChecks::default(),
    })
    .unwrap_or_else(|issue| panic!("{}: {}", issue.field, issue.reason))
}

/// Signs `payload` now and returns the request as sent.
pub fn signed(provider: &dyn Provider, payload: &str) -> Req {
    Req::post(
        &provider
            .sign(payload.as_bytes(), SystemTime::now())
            .unwrap(),
    )
}

/// Verifies and decodes, as the server does, and checks that each event
/// decodes again from its raw JSON alone, as the store reads it.
pub fn receive(
    provider: &dyn Provider,
    decode: Decode,
    req: &Req,
) -> Result<Vec<Decoded>, Rejection> {
    let verified = provider.verify(&req.request())?;
    let mut events = decode(&verified.document)?;
    if let Some(kind) = &verified.kind {
        assert_eq!(events.len(), 1, "a header's kind names one event");
        events[0].kind = kind.clone();
    }
    for event in &events {
        // The store keeps an event's raw JSON alone and reads it this way.
        assert_eq!(
            super::decode_again(decode, &event.kind, &event.raw_json).as_ref(),
            Ok(&event.payload),
            "{} does not decode again from its raw JSON {}",
            event.kind,
            event.raw_json
        );
    }
    Ok(events)
}

/// One change to a signed request.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBodyByte { at: usize, xor: u8 },
    TruncateBody { keep: usize },
    AppendBody { bytes: Vec<u8> },
    FlipHeaderByte { header: usize, at: usize, xor: u8 },
    TruncateHeader { header: usize, keep: usize },
    AppendHeader { header: usize, bytes: Vec<u8> },
    DropHeader { header: usize },
}

/// Any change to a signed request.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![body_mutation(), header_mutation()]
}

/// A change to the body.
pub fn body_mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<usize>();
    prop_oneof![
        (index, 1..=255u8).prop_map(|(at, xor)| Mutation::FlipBodyByte { at, xor }),
        index.prop_map(|keep| Mutation::TruncateBody { keep }),
        proptest::collection::vec(any::<u8>(), 1..8)
            .prop_map(|bytes| Mutation::AppendBody { bytes }),
    ]
}

/// A change to a proof header (every header but `Content-Type`).
pub fn header_mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<usize>();
    prop_oneof![
        (index, index, 1..=255u8).prop_map(|(header, at, xor)| Mutation::FlipHeaderByte {
            header,
            at,
            xor
        }),
        (index, index).prop_map(|(header, keep)| Mutation::TruncateHeader { header, keep }),
        (index, proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(header, bytes)| Mutation::AppendHeader { header, bytes }),
        index.prop_map(|header| Mutation::DropHeader { header }),
    ]
}

impl Mutation {
    /// The mutated request; `None` when the change cannot be expressed
    /// (an empty part, or a header value HTTP cannot carry).
    pub fn apply(&self, req: &Req) -> Option<Req> {
        let mut out = req.clone();
        let names = req.proof_headers();
        let pick = |i: usize| names.get(i % names.len().max(1)).cloned();
        let edit_header = |out: &mut Req, i: usize, edit: &dyn Fn(&mut Vec<u8>) -> bool| {
            let name = pick(i)?;
            let mut value = out.headers.get(&name)?.as_bytes().to_vec();
            if !edit(&mut value) {
                return None;
            }
            out.headers
                .insert(name, HeaderValue::from_bytes(&value).ok()?);
            Some(())
        };
        match self {
            Self::FlipBodyByte { at, xor } => {
                let len = out.body.len();
                (len > 0).then_some(())?;
                out.body[at % len] ^= xor;
            }
            Self::TruncateBody { keep } => {
                let len = out.body.len();
                (len > 0).then_some(())?;
                out.body.truncate(keep % len);
            }
            Self::AppendBody { bytes } => out.body.extend_from_slice(bytes),
            Self::FlipHeaderByte { header, at, xor } => edit_header(&mut out, *header, &|v| {
                let len = v.len();
                if len == 0 {
                    return false;
                }
                v[at % len] ^= xor;
                true
            })?,
            Self::TruncateHeader { header, keep } => edit_header(&mut out, *header, &|v| {
                let len = v.len();
                if len == 0 {
                    return false;
                }
                v.truncate(keep % len);
                true
            })?,
            Self::AppendHeader { header, bytes } => edit_header(&mut out, *header, &|v| {
                v.extend_from_slice(bytes);
                true
            })?,
            Self::DropHeader { header } => {
                out.headers.remove(pick(*header)?);
            }
        }
        Some(out)
    }
}

/// Checks that `mutation` of the valid `original` is refused, unless
/// `equivalent` says the mutated request means the same (a hex digit's
/// case, say).
pub fn check_refused(
    provider: &dyn Provider,
    decode: Decode,
    original: &Req,
    mutation: &Mutation,
    equivalent: impl Fn(&Req, &Req) -> bool,
) -> Result<(), TestCaseError> {
    prop_assert!(
        provider.verify(&original.request()).is_ok(),
        "the original must verify"
    );
    let Some(mutated) = mutation.apply(original) else {
        return Ok(());
    };
    if let Ok(verified) = provider.verify(&mutated.request()) {
        prop_assert!(
            equivalent(original, &mutated),
            "accepted after {mutation:?}: {mutated:?}"
        );
        // Still decodes without panicking.
        let _ = decode(&verified.document);
    }
    Ok(())
}

/// Header values equal except for ASCII case (hex digests).
pub fn same_ignoring_case(a: &Req, b: &Req, name: &str) -> bool {
    match (a.headers.get(name), b.headers.get(name)) {
        (Some(x), Some(y)) => x.as_bytes().eq_ignore_ascii_case(y.as_bytes()),
        _ => false,
    }
}

/// Arbitrary requests: any of the headers providers read, with values
/// made of signature-like pieces and random bytes; random bodies.
pub fn arbitrary_request() -> impl Strategy<Value = Req> {
    const NAMES: &[&str] = &[
        "x-oneroute-signature",
        "x-hub-signature-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-signature",
        "x-messangi-token",
        "x-whatsable-token",
        "authorization",
        "content-type",
    ];
    let piece = prop_oneof![
        Just("sha256=".to_owned()),
        Just("v1,".to_owned()),
        Just(" ".to_owned()),
        Just("whsec_".to_owned()),
        "[0-9a-fA-F]{0,130}",
        "[A-Za-z0-9+/=]{0,90}",
        "[0-9]{0,12}",
        "[ -~]{0,20}",
    ];
    let value = proptest::collection::vec(piece, 0..4).prop_map(|pieces| pieces.concat());
    let headers = proptest::collection::vec((0..NAMES.len(), value), 0..6);
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "[\\[\\]{}\":,0-9eE.+\\- a-z\\\\]{0,200}".prop_map(String::into_bytes),
        Just(b"{\"event\":\"newMessage\",\"entry\":[{\"changes\":[{\"value\":{}}]}]}".to_vec()),
    ];
    let query = "[a-z.=&%0-9_]{0,60}";
    (headers, body, query).prop_map(|(headers, body, query)| {
        let mut map = HeaderMap::new();
        for (i, value) in headers {
            if let Ok(value) = HeaderValue::try_from(value) {
                map.append(NAMES[i], value);
            }
        }
        Req {
            method: Method::POST,
            headers: map,
            query,
            body,
        }
    })
}

/// Runs everything a request can reach; the caller only asks for no panic.
pub fn exercise(provider: &dyn Provider, decode: Decode, req: &Req) {
    if let Ok(verified) = provider.verify(&req.request()) {
        let _ = decode(&verified.document);
    }
    let _ = decode(&req.body);
    if let Some(handshake) = provider.handshake() {
        let _ = handshake.answer(&Req::get(&req.query).request());
    }
}
