//! A generic HMAC signature over the raw body, for providers not built in:
//! the route says which header carries it (`header`, default
//! `X-Signature`), the hash (`algorithm`: `sha256` or `sha512`), how it is
//! written (`encoding`: `hex` or `base64`) and any text before it
//! (`prefix`, e.g. `sha256=`). GitHub's `X-Hub-Signature-256` is
//! `header = "X-Hub-Signature-256"`, `prefix = "sha256="`; Shopify's is
//! `header = "X-Shopify-Hmac-Sha256"`, `encoding = "base64"`.
//!
//! Bodies are any JSON; `kind` is the body's `type` or `event` field where
//! there is one, else `hmac`, and the payload is `other`.

use std::time::SystemTime;

use axum::http::HeaderName;
use serde_json::Value;

use super::mac::BodySignature;
use super::{Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::config::provider::{Header, HmacOptions};
use crate::event::{Decoded, Payload};
use crate::secret::Secret;

const DEFAULT_HEADER: &str = "X-Signature";
const DEFAULT_HEADER_NAME: &str = "x-signature";
const KIND: &str = "hmac";

pub fn build(options: &HmacOptions, secret: Secret) -> Box<dyn Provider> {
    let header = options.header.clone().unwrap_or_else(|| Header {
        name: HeaderName::from_static(DEFAULT_HEADER_NAME),
        written: DEFAULT_HEADER.to_owned(),
    });
    Box::new(GenericHmac {
        secret,
        signature: BodySignature {
            header: header.name,
            header_text: header.written,
            algorithm: options.algorithm,
            encoding: options.encoding,
            prefix: options.prefix.clone(),
        },
    })
}

struct GenericHmac {
    secret: Secret,
    signature: BodySignature,
}

impl Provider for GenericHmac {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.signature.verify(&self.secret, req)?;
        Ok(Verified::body(req))
    }

    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        Ok(self.signature.sign(&self.secret, payload))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body: Value = serde_json::from_slice(document)
        .map_err(|e| Rejection::bad_request(format!("body is not JSON: {e}")))?;
    Ok(vec![Decoded {
        kind: json::text(&body, &["type", "event"]).unwrap_or_else(|| KIND.to_owned()),
        payload: Payload::Other,
        raw_json: json::document_text(document),
        provider_id: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::mac;
    use crate::providers::testkit::{self, Req};
    use proptest::prelude::*;

    const SECRET: &str = "It's a Secret to Everybody";

    fn route(
        header: &str,
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
        prefix: Option<&str>,
    ) -> ProviderOptions {
        ProviderOptions::Hmac(HmacOptions {
            header: Some(Header {
                name: HeaderName::try_from(header).unwrap(),
                written: header.to_owned(),
            }),
            algorithm,
            encoding,
            prefix: prefix.unwrap_or_default().to_owned(),
        })
    }

    /// GitHub's documented example: secret "It's a Secret to Everybody",
    /// payload "Hello, World!".
    #[test]
    fn github_example_signature() {
        let p = testkit::provider(
            route(
                "X-Hub-Signature-256",
                HmacAlgorithm::Sha256,
                SignatureEncoding::Hex,
                Some("sha256="),
            ),
            SECRET,
        );
        let req = Req::post(&Signed::json(b"Hello, World!", [])).header(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        assert!(p.verify(&req.request()).is_ok());
        let signed = p.sign(b"Hello, World!", SystemTime::now()).unwrap();
        assert_eq!(
            signed.headers[0].1,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let no_prefix = req.header(
            "x-hub-signature-256",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        assert!(p.verify(&no_prefix.request()).is_err());
    }

    #[test]
    fn sha512_base64_defaults_and_kinds() {
        let p = testkit::provider(
            route(
                "X-Shopify-Hmac-Sha256",
                HmacAlgorithm::Sha512,
                SignatureEncoding::Base64,
                None,
            ),
            SECRET,
        );
        let req = testkit::signed(&*p, r#"{"event":"order.created"}"#);
        assert_eq!(
            req.headers["x-shopify-hmac-sha256"].len(),
            88,
            "base64 of 64 bytes"
        );
        let events = testkit::receive(&*p, decode, &req).unwrap();
        assert_eq!(
            (events[0].kind.as_str(), &events[0].payload),
            ("order.created", &Payload::Other)
        );

        let defaults = testkit::provider(ProviderOptions::bare(ProviderId::Hmac), SECRET);
        let req = testkit::signed(&*defaults, "{}");
        assert_eq!(req.headers["x-signature"].len(), 64, "hex of 32 bytes");
        assert_eq!(
            testkit::receive(&*defaults, decode, &req).unwrap()[0].kind,
            "hmac"
        );
    }

    fn equivalent(
        encoding: SignatureEncoding,
        header: &'static str,
    ) -> impl Fn(&Req, &Req) -> bool {
        move |a: &Req, b: &Req| {
            let digest = |r: &Req| {
                let value = r
                    .headers
                    .get(header)?
                    .as_bytes()
                    .strip_prefix(b"p=")?
                    .to_vec();
                mac::decode(encoding, &value)
            };
            a.body == b.body && digest(a).is_some() && digest(a) == digest(b)
        }
    }

    proptest! {
        #[test]
        fn mutations_are_refused(
            data in "[ -~]{0,40}",
            sha512 in any::<bool>(),
            base64 in any::<bool>(),
            mutation in testkit::mutation(),
        ) {
            let algorithm = if sha512 { HmacAlgorithm::Sha512 } else { HmacAlgorithm::Sha256 };
            let encoding = if base64 { SignatureEncoding::Base64 } else { SignatureEncoding::Hex };
            let p = testkit::provider(route("X-Sig", algorithm, encoding, Some("p=")), SECRET);
            let original = testkit::signed(&*p, &serde_json::json!({"data": data}).to_string());
            // Hex case and base64 padding are spellings, not changes.
            testkit::check_refused(&*p, decode, &original, &mutation, equivalent(encoding, "x-sig"))?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request(), base64 in any::<bool>()) {
            let encoding = if base64 { SignatureEncoding::Base64 } else { SignatureEncoding::Hex };
            let p = testkit::provider(route("X-Signature", HmacAlgorithm::Sha256, encoding, Some("sha256=")), SECRET);
            testkit::exercise(&*p, decode, &req);
        }
    }
}
