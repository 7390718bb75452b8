//! Every provider's verify, handshake and decode on fuzzed requests.
//!
//! Input: a selector byte (the provider, as in `Fuzzed::from_selector`), a
//! flags byte, then `name: value` header lines, an empty line, the body.
//! Flag 1 starts from the headers the provider's `sign` gives the body,
//! which the header lines then replace (an empty value removes one), so
//! nearly valid proofs are reached; flag 2 also makes the body the query
//! of a GET handshake. The body is decoded as if it were proven, too.

#![no_main]

use std::time::SystemTime;

use http::{HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use wirehook_fuzz::{Fuzzed, Req};

fuzz_target!(|data: &[u8]| {
    let [selector, flags, rest @ ..] = data else {
        return;
    };
    let fuzzed = Fuzzed::from_selector(*selector);
    let mut lines = Vec::new();
    let mut rest = rest;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let body = rest;

    let mut req = match fuzzed.provider.sign(body, SystemTime::now()) {
        Ok(signed) if flags & 1 != 0 => Req::post(&signed),
        _ => Req::post(&wirehook::providers::Signed {
            headers: Vec::new(),
            body: body.to_vec(),
        }),
    };
    req.body = body.to_vec();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = HeaderName::from_bytes(&line[..colon]) else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() {
            req.headers.remove(&name);
        } else if let Ok(value) = HeaderValue::from_bytes(value) {
            req.headers.insert(name, value);
        }
    }

    if let Ok(verified) = fuzzed.provider.verify(&req.request()) {
        fuzzed.check_decode(&verified.document);
    }
    fuzzed.check_decode(body);

    if flags & 2 != 0 {
        req.method = Method::GET;
        req.query = String::from_utf8_lossy(body).into_owned();
        req.body.clear();
        if let Some(handshake) = fuzzed.provider.handshake() {
            let _ = handshake.answer(&req.request());
        }
    }
});
