//! What a route whose provider is a plugin (`plugin:NAME`) keeps in the
//! places built-in providers fill: the plugin itself proves and decodes
//! each request (`runtime::provider`), asynchronously, so the server
//! calls it before these are ever asked.
//!
//! The events a provider plugin decodes are each their own raw JSON with
//! the payload `Other`: decoding one again ([`decode`]) needs no plugin.

use std::time::SystemTime;

use super::{Provider, Rejection, Request, SignError, Signed, Verified};
use crate::event::{Decoded, Payload};

/// Refuses everything: the server verifies through the plugin, and
/// `wirehook sign` signs through it.
pub struct StandIn;

impl Provider for StandIn {
    fn verify<'r>(&self, _req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        Err(Rejection::unauthorized("verified by its provider plugin"))
    }

    fn sign(&self, _payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        Err(SignError::Plugin)
    }
}

/// An event a provider plugin decoded, from its raw JSON: the payload is
/// `Other`, and its kind is the one it was stored under.
pub fn decode(raw_json: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let raw_json = std::str::from_utf8(raw_json)
        .map_err(|_| Rejection::bad_request("the event is not UTF-8"))?;
    Ok(vec![Decoded {
        kind: String::new(),
        payload: Payload::Other,
        raw_json: raw_json.to_owned(),
        provider_id: None,
    }])
}
