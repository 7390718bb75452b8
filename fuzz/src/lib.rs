//! What the fuzz targets share: a provider chosen by one input byte, an
//! owned request, and the checks every decoded event must pass.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use wirehook::algorithm::{HmacAlgorithm, SignatureEncoding};
use wirehook::config::provider::{
    HmacOptions, MetaOptions, ProviderId, ProviderOptions, TwilioOptions,
};
use wirehook::providers::{self, Provider, ProviderConfig, Request, Signed};
use wirehook::secret::Secret;

/// Every route's secret: a Standard Webhooks one, which every provider
/// takes as it is.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Meta's handshake token.
pub const VERIFY_TOKEN: &str = "fuzz-verify-token";

/// A provider as a route builds it.
pub struct Fuzzed {
    pub id: &'static str,
    pub provider: Arc<dyn Provider>,
}

impl Fuzzed {
    /// The provider `selector` names: its low four bits pick the provider
    /// (in [`ProviderId::ALL`] order), the next ones an `hmac` route's
    /// options, so every hash, encoding and prefix is reached.
    pub fn from_selector(selector: u8) -> Self {
        let known = ProviderId::ALL;
        let id = known[usize::from(selector & 15) % known.len()];
        let options = match ProviderOptions::bare(id) {
            ProviderOptions::Hmac(_) => ProviderOptions::Hmac(HmacOptions {
                header: None,
                algorithm: if selector & 16 == 0 {
                    HmacAlgorithm::Sha256
                } else {
                    HmacAlgorithm::Sha512
                },
                encoding: if selector & 32 == 0 {
                    SignatureEncoding::Hex
                } else {
                    SignatureEncoding::Base64
                },
                prefix: if selector & 64 != 0 { "sha256=" } else { "" }.to_owned(),
            }),
            ProviderOptions::Meta(_) => ProviderOptions::Meta(MetaOptions {
                verify_token: Some(Secret::new(VERIFY_TOKEN.as_bytes())),
            }),
            ProviderOptions::Twilio(_) => ProviderOptions::Twilio(TwilioOptions {
                public_url: Some("https://hooks.example.com/twilio".parse().expect("a URL")),
            }),
            other => other,
        };
        let id = id.as_str();
        let provider = providers::build(&ProviderConfig {
            options: &options,
            secret: Some(Secret::new(SECRET.as_bytes())),
            slow_checks: providers::SlowChecks::default(),
        })
        .unwrap_or_else(|issue| panic!("{id}: {}: {}", issue.field, issue.reason));
        Self { id, provider }
    }

    /// Decodes `document` and checks each event reads back from its raw
    /// JSON alone, as the store reads it.
    pub fn check_decode(&self, document: &[u8]) {
        check_decode(self.id, document);
    }
}

/// Decodes `document` as provider `id` does; each event must decode again
/// from its own raw JSON to the same payload.
pub fn check_decode(id: &str, document: &[u8]) {
    let decode = providers::decoder(id).expect("a known provider");
    let Ok(events) = decode(document) else {
        return;
    };
    for event in &events {
        assert_eq!(
            providers::decode_again(decode, &event.kind, &event.raw_json).as_ref(),
            Ok(&event.payload),
            "{id}: a `{}` event does not decode again from its raw JSON {}",
            event.kind,
            event.raw_json,
        );
    }
}

/// A request that owns its parts.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: String,
    pub body: Vec<u8>,
}

impl Req {
    /// The POST that `signed` describes. Its headers must be valid:
    /// `sign` promises a request that can be sent.
    pub fn post(signed: &Signed) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &signed.headers {
            headers.append(
                HeaderName::try_from(name.as_str()).expect("sign writes valid header names"),
                HeaderValue::try_from(value.as_str()).expect("sign writes valid header values"),
            );
        }
        Self {
            method: Method::POST,
            headers,
            query: String::new(),
            body: signed.body.clone(),
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
}
