//! Providers: each file proves that a request came from one provider and
//! decodes it into events, nothing else. Adding a provider is one new file,
//! its options in `config::provider`, and one arm in [`build`] and
//! [`decoder`].
//!
//! Decoding needs no config and no secret: an event is a function of the
//! verified document it came from, so the store keeps that document alone
//! and decodes it again when the event is read ([`Decode`]). What a
//! provider sends outside the document travels in [`Verified`]: the
//! delivery id, and the kind when a header names it (GitHub's
//! `X-GitHub-Event`). A document whose kind travels in a header decodes
//! to exactly one event, so [`decode_again`] finds it under that kind.
//!
//! Form bodies (`application/x-www-form-urlencoded`) are proven over
//! their raw bytes like any other, then become a JSON object of their
//! fields ([`form`]): the document, for providers that send forms. Every
//! other provider refuses a body that is not JSON with 415.
//!
//! Each provider also signs: [`Provider::sign`] produces exactly what the
//! provider would send, for `wirehook sign` and for tests. Signing sits
//! next to verifying in each file, built from the same route config, so
//! the two cannot drift apart.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, Method};

use crate::config::provider::{ProviderId, ProviderOptions};
use crate::event::{Decoded, Payload};
use crate::secret::Secret;

mod form;
mod generic_hmac;
mod github;
mod goflow;
pub mod jsjson;
// Public for the fuzz targets (fuzz/).
pub mod json;
mod mac;
mod messangi;
mod meta;
mod oneroute;
pub mod plugin;
#[cfg(test)]
mod regressions;
mod shopify;
mod slack;
mod standard_webhooks;
mod stripe;
mod telegram;
#[cfg(test)]
mod testkit;
mod time;
mod token;
mod truora;
mod twilio;
mod vonage;
mod whatsable;

/// Decodes a verified document into one or more events. Unknown event
/// names decode to [`crate::event::Payload::Other`], never an error. Each
/// event's `raw_json` decodes again to that event's payload (every
/// provider's tests receive through `testkit::receive`, which checks it),
/// which is what lets the store keep only the raw JSON ([`decode_again`]).
pub type Decode = fn(&[u8]) -> Result<Vec<Decoded>, Rejection>;

/// The request as received, before anything trusts it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// Why a provider could not sign a payload ([`Provider::sign`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The payload is not JSON; the parser's reason when it gave one.
    #[error("payload is not JSON{}", .0.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NotJson(Option<String>),
    #[error("payload is not a JSON object")]
    NotObject,
    #[error("cannot sign the JWT: {0}")]
    Jwt(String),
    #[error("a header value must be text")]
    HeaderNotText,
    /// The provider is a plugin, which signs through its `sign` export.
    #[error("a provider plugin signs through its own `sign` export")]
    Plugin,
}

impl<'a> Request<'a> {
    /// The text of header `name`, which carries the request's proof: a
    /// missing or non-text one is refused as unauthorized.
    pub fn proof_header(&self, name: &str) -> Result<&'a str, Rejection> {
        self.headers
            .get(name)
            .ok_or_else(|| Rejection::unauthorized(format!("missing `{name}` header")))?
            .to_str()
            .map_err(|_| Rejection::unauthorized(format!("`{name}` is not text")))
    }
}

/// Why a request was refused; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 401: the proof is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 400: the body is not what the provider sends.
    #[error("{0}")]
    BadRequest(String),
    /// 415: the content type is not what the provider sends.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 403: a handshake presented the wrong token.
    #[error("{0}")]
    Forbidden(String),
    /// 413: the body holds more events, or decodes to more bytes, than
    /// one request may ([`Budget`]).
    #[error("{0}")]
    TooLarge(String),
    /// 503: checking the request would take more than its share of the
    /// machine right now ([`SlowChecks`]); it may be sent again.
    #[error("{0}")]
    Busy(String),
}

impl Rejection {
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::Unauthorized(reason.into())
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest(reason.into())
    }
}

/// What [`Provider::verify`] proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'r> {
    /// The JSON document that was proven: the body itself, or for a JWT
    /// its claims, or for OneRoute the `JSON.stringify` form it signed.
    pub document: Cow<'r, [u8]>,
    /// The provider's id for the delivery when it travels outside the
    /// document (Standard Webhooks' `webhook-id` header).
    pub delivery_id: Option<String>,
    /// The event's kind when it travels outside the document (GitHub's
    /// `X-GitHub-Event`): it names the one event the document decodes to.
    pub kind: Option<String>,
    /// The JSON wirehook itself answers with, 200, when the request is a
    /// check of the endpoint rather than an event (Slack's
    /// `url_verification` challenge, GitHub's `ping`): nothing is decoded,
    /// stored or passed to a plugin.
    pub answer: Option<String>,
}

impl<'r> Verified<'r> {
    /// The request body, proven as it is.
    pub fn body(req: &Request<'r>) -> Self {
        Self::document(Cow::Borrowed(req.body))
    }

    /// `document`, proven, with nothing outside it.
    pub fn document(document: Cow<'r, [u8]>) -> Self {
        Self {
            document,
            delivery_id: None,
            kind: None,
            answer: None,
        }
    }
}

/// A request as the provider would send it: what `wirehook sign` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Signed {
    /// A JSON body with the given proof headers.
    pub fn json(body: &[u8], proof: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut headers: Vec<_> = proof.into_iter().collect();
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        Self {
            headers,
            body: body.to_vec(),
        }
    }
}

/// Verify, and the other side, sign, with the route's config and secret
/// ([`Decode`] needs neither). All look only at their arguments; none has
/// side effects, so a rejected request leaves no trace but a log line.
pub trait Provider: Send + Sync + 'static {
    /// Proves the request came from the provider, over the raw bytes.
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection>;

    /// Builds the request the provider would send for the JSON `payload`
    /// at time `now`, proven the way [`Provider::verify`] checks.
    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError>;

    /// The GET handshake the provider makes before sending events (Meta's
    /// `hub.challenge`), if it makes one. `None` (the default): a GET to
    /// its route is 405.
    fn handshake(&self) -> Option<&dyn Handshake> {
        None
    }
}

/// A provider's GET handshake.
pub trait Handshake: Send + Sync {
    /// The text/plain answer to the GET `req`, or its refusal.
    fn answer(&self, req: &Request<'_>) -> Result<String, Rejection>;
}

/// What a provider is built from: its route's options and secret, resolved.
pub struct ProviderConfig<'a> {
    pub options: &'a ProviderOptions,
    pub secret: Option<Secret>,
    /// Shared by every route of the running config.
    pub slow_checks: SlowChecks,
}

/// A bound on the checks that cost more than hashing the body, run before
/// a request is proven (OneRoute re-serialises a body whose raw bytes did
/// not match). Over it a request is refused at once rather than queued,
/// so that clients without the secret cannot make the daemon spend its
/// cores on them: refusing stays about as cheap as hashing.
#[derive(Debug, Clone)]
pub struct SlowChecks(Arc<tokio::sync::Semaphore>);

impl SlowChecks {
    /// At most `limit` at once; 0 refuses every one.
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(limit)))
    }

    /// A place for one check, held while it runs; [`Rejection::Busy`] when
    /// every place is taken.
    pub fn start(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Rejection> {
        self.0.try_acquire().map_err(|_| {
            Rejection::Busy("too many requests being checked at once; retry later".to_owned())
        })
    }
}

impl Default for SlowChecks {
    /// One per core.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }
}

/// Most events one request may decode to. Providers batch (Meta sends at
/// most 1,000 changes at once); more is a body built to be expensive.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The decoded events of one request may hold this many times the bytes
/// of the document they came from, plus [`DECODED_SLACK_BYTES`], in their
/// raw JSON: each event repeats a little of the envelope, but a body
/// crafted to be repeated in every event is refused, not stored.
pub const DECODED_PER_DOCUMENT_BYTE: usize = 4;

/// See [`DECODED_PER_DOCUMENT_BYTE`]: room for a small document's many
/// small events.
pub const DECODED_SLACK_BYTES: usize = 64 * 1024;

/// What a decoder may still produce from one document: counted as it
/// goes, so that a hostile body is refused before it is all decoded.
pub struct Budget {
    events: usize,
    bytes: usize,
}

impl Budget {
    pub fn for_document(document: &[u8]) -> Self {
        Self {
            events: MAX_EVENTS_PER_REQUEST,
            bytes: document
                .len()
                .saturating_mul(DECODED_PER_DOCUMENT_BYTE)
                .saturating_add(DECODED_SLACK_BYTES),
        }
    }

    /// Takes one event of `raw_json_len` bytes, or refuses the request.
    pub fn take(&mut self, raw_json_len: usize) -> Result<(), Rejection> {
        self.events = self.events.checked_sub(1).ok_or_else(|| {
            Rejection::TooLarge(format!(
                "more than {MAX_EVENTS_PER_REQUEST} events in one request"
            ))
        })?;
        self.bytes = self.bytes.checked_sub(raw_json_len).ok_or_else(|| {
            Rejection::TooLarge("the events decode to far more than the body holds".to_owned())
        })?;
        Ok(())
    }
}

/// A route field a provider cannot work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub field: &'static str,
    pub reason: String,
}

/// The decoder of provider `id`, if wirehook knows it.
pub fn decoder(id: &str) -> Option<Decode> {
    if id.starts_with(crate::config::provider::PLUGIN_PREFIX) {
        return Some(plugin::decode);
    }
    let id: ProviderId = id.parse().ok()?;
    Some(match id {
        ProviderId::Github => github::decode,
        ProviderId::Goflow => goflow::decode,
        ProviderId::Hmac => generic_hmac::decode,
        ProviderId::Messangi => messangi::decode,
        ProviderId::Meta => meta::decode,
        ProviderId::Oneroute => oneroute::decode,
        ProviderId::Shopify => shopify::decode,
        ProviderId::Slack => slack::decode,
        ProviderId::StandardWebhooks => standard_webhooks::decode,
        ProviderId::Stripe => stripe::decode,
        ProviderId::Telegram => telegram::decode,
        ProviderId::Truora => truora::decode,
        ProviderId::Twilio => twilio::decode,
        ProviderId::Vonage => vonage::decode,
        ProviderId::Whatsable => whatsable::decode,
    })
}

/// The payload of the `kind` event that `decode` finds in an event's
/// `raw_json`: how the store reads an event it kept only the raw JSON of.
/// A kind that travelled in a header ([`Verified::kind`]) names the one
/// event its document decodes to, under the provider's own kind.
pub fn decode_again(decode: Decode, kind: &str, raw_json: &str) -> Result<Payload, String> {
    let mut events = decode(raw_json.as_bytes()).map_err(|rejection| rejection.to_string())?;
    match events.iter().position(|event| event.kind == kind) {
        Some(at) => Ok(events.swap_remove(at).payload),
        None if events.len() == 1 => Ok(events.remove(0).payload),
        None => Err(format!("its raw JSON decodes to no `{kind}` event")),
    }
}

/// The payload of the `kind` event that provider `provider` finds in an
/// event's `raw_json`: the [`crate::store::Redecode`] stores are opened
/// with.
pub fn redecode(provider: &str, kind: &str, raw_json: &str) -> Result<Payload, String> {
    let decode = decoder(provider).ok_or_else(|| format!("unknown provider `{provider}`"))?;
    decode_again(decode, kind, raw_json)
}

/// Builds the provider `config.options` says, with its secret.
pub fn build(config: &ProviderConfig<'_>) -> Result<Arc<dyn Provider>, ConfigIssue> {
    // A provider plugin's keys stay with the host; it may need none.
    if let ProviderOptions::Plugin(_) = config.options {
        return Ok(Arc::new(plugin::StandIn));
    }
    let secret = config.secret.clone().ok_or_else(|| ConfigIssue {
        field: "secret",
        reason: format!("the `{}` provider needs a secret", config.options.name()),
    })?;
    let provider: Box<dyn Provider> = match config.options {
        ProviderOptions::Plugin(_) => unreachable!("returned above"),
        ProviderOptions::Github => github::build(secret),
        ProviderOptions::Goflow(options) => goflow::build(options, secret)?,
        ProviderOptions::Hmac(options) => generic_hmac::build(options, secret),
        ProviderOptions::Messangi(options) => messangi::build(options, secret)?,
        ProviderOptions::Meta(options) => meta::build(options, secret),
        ProviderOptions::Oneroute => oneroute::build(secret, config.slow_checks.clone()),
        ProviderOptions::Shopify => shopify::build(secret),
        ProviderOptions::Slack => slack::build(secret),
        ProviderOptions::StandardWebhooks => standard_webhooks::build(&secret)?,
        ProviderOptions::Stripe => stripe::build(secret),
        ProviderOptions::Telegram => telegram::build(secret),
        ProviderOptions::Truora => truora::build(&secret),
        ProviderOptions::Twilio(options) => twilio::build(options, secret)?,
        ProviderOptions::Vonage => vonage::build(&secret),
        ProviderOptions::Whatsable(options) => whatsable::build(options, secret)?,
    };
    Ok(Arc::from(provider))
}

/// Accepts a missing content type or any JSON one (`application/json`,
/// `application/vnd.x+json`, with parameters).
pub(crate) fn require_json_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType(format!(
            "content type `{essence}` is not JSON"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_builds_with_default_options() {
        for id in ProviderId::ALL {
            let options = match ProviderOptions::bare(id) {
                // Twilio signs the URL it calls, which has no default.
                ProviderOptions::Twilio(_) => {
                    ProviderOptions::Twilio(crate::config::provider::TwilioOptions {
                        public_url: Some("https://hooks.example.com/t".parse().unwrap()),
                    })
                }
                options => options,
            };
            let built = build(&ProviderConfig {
                options: &options,
                secret: Some(Secret::new(&b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"[..])),
                slow_checks: SlowChecks::default(),
            });
            assert!(built.is_ok(), "{id}");
            assert!(decoder(id.as_str()).is_some(), "{id}");
        }
    }

    #[test]
    fn a_provider_without_a_secret_says_so() {
        let issue = build(&ProviderConfig {
            options: &ProviderOptions::bare(ProviderId::Goflow),
            secret: None,
            slow_checks: SlowChecks::default(),
        })
        .err()
        .unwrap();
        assert_eq!(issue.field, "secret");
        assert!(issue.reason.contains("`goflow`"), "{}", issue.reason);
    }
}
