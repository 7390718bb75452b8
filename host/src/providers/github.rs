//! GitHub webhooks: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
//! body>` with the webhook's secret; JSON bodies only (a webhook's
//! content type must be `application/json`).
//!
//! The kind is `X-GitHub-Event` and the delivery id `X-GitHub-Delivery`,
//! both headers: they travel in [`Verified`], and the body decodes to one
//! event whose kind the header names. GitHub signs the body alone, so
//! these two headers are only as trusted as the body they come with.
//!
//! `ping` (sent when a webhook is created) is answered by wirehook with
//! 200 and reaches no plugin: it says the endpoint works and carries no
//! event a flow acts on.

use std::time::SystemTime;

use axum::http::HeaderName;

use super::mac::BodySignature;
use super::{Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::event::{Decoded, Payload};
use crate::secret::Secret;

const SIGNATURE: &str = "X-Hub-Signature-256";
const EVENT: &str = "X-GitHub-Event";
const DELIVERY: &str = "X-GitHub-Delivery";
/// The kind of a body decoded without its header; the header's kind
/// replaces it.
const KIND: &str = "github";

pub fn build(secret: Secret) -> Box<dyn Provider> {
    Box::new(Github {
        signature: BodySignature {
            header: HeaderName::from_static("x-hub-signature-256"),
            header_text: SIGNATURE.to_owned(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: "sha256=".to_owned(),
        },
        secret,
    })
}

struct Github {
    signature: BodySignature,
    secret: Secret,
}

impl Provider for Github {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.signature.verify(&self.secret, req)?;
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Rejection::bad_request(format!("missing `{name}` header")))
        };
        let kind = header(EVENT)?;
        let delivery_id = header(DELIVERY)?;
        let answer = (kind == "ping").then(|| r#"{"pong":true}"#.to_owned());
        Ok(Verified {
            delivery_id: Some(delivery_id),
            kind: Some(kind),
            answer,
            ..Verified::body(req)
        })
    }

    /// The kind is the payload's `"x_github_event"` member if it has one
    /// (GitHub's own bodies never do), else `push`.
    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let body: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| SignError::NotJson(Some(e.to_string())))?;
        let kind = json::text(&body, &["x_github_event"]).unwrap_or_else(|| "push".to_owned());
        let mut signed = self.signature.sign(&self.secret, payload);
        let nanos = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        signed.headers.push((EVENT.to_owned(), kind));
        signed
            .headers
            .push((DELIVERY.to_owned(), format!("{:032x}", nanos)));
        Ok(signed)
    }
}

/// Decodes a verified document into its one event, under [`KIND`]; see
/// [`super::Decode`]. The header's kind replaces it.
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    json::object(document)?;
    Ok(vec![Decoded {
        kind: KIND.to_owned(),
        payload: Payload::Other,
        raw_json: json::document_text(document),
        provider_id: None,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit::{self, Req};
    use proptest::prelude::*;

    const SECRET: &str = "It's a Secret to Everybody";

    fn provider() -> std::sync::Arc<dyn Provider> {
        testkit::provider(ProviderOptions::bare(ProviderId::Github), SECRET)
    }

    /// GitHub's documented example ("Validating webhook deliveries",
    /// docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries):
    /// secret "It's a Secret to Everybody", payload "Hello, World!".
    #[test]
    fn githubs_documented_signature() {
        let p = provider();
        let req = Req::post(&Signed {
            headers: vec![
                (
                    SIGNATURE.to_owned(),
                    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
                        .to_owned(),
                ),
                (EVENT.to_owned(), "push".to_owned()),
                (DELIVERY.to_owned(), "1".to_owned()),
            ],
            body: b"Hello, World!".to_vec(),
        });
        assert!(p.verify(&req.request()).is_ok());
        let mut other = req.clone();
        other.body = b"Hello, World?".to_vec();
        assert!(p.verify(&other.request()).is_err());
    }

    #[test]
    fn kind_and_delivery_come_from_the_headers_and_ping_is_answered() {
        let p = provider();
        let req = testkit::signed(&*p, r#"{"x_github_event":"issues","action":"opened"}"#)
            .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        let verified = p.verify(&req.request()).unwrap();
        assert_eq!(verified.kind.as_deref(), Some("issues"));
        assert_eq!(
            verified.delivery_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(verified.answer, None);
        let events = testkit::receive(&*p, decode, &req).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            crate::providers::decode_again(decode, "issues", &events[0].raw_json),
            Ok(Payload::Other)
        );
        let ping = testkit::signed(&*p, r#"{"x_github_event":"ping","zen":"Keep it simple."}"#);
        assert!(p.verify(&ping.request()).unwrap().answer.is_some());
        let mut no_event = req.clone();
        no_event.headers.remove("x-github-event");
        assert!(matches!(
            p.verify(&no_event.request()),
            Err(Rejection::BadRequest(_))
        ));
        let form = req
            .clone()
            .header("content-type", "application/x-www-form-urlencoded");
        assert!(matches!(
            p.verify(&form.request()),
            Err(Rejection::UnsupportedMediaType(_))
        ));
    }

    proptest! {
        #[test]
        fn mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::mutation()) {
            let p = provider();
            let body = serde_json::json!({"action": "opened", "data": data}).to_string();
            let original = testkit::signed(&*p, &body);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                // The event and delivery headers are not signed (GitHub
                // signs the body alone); only the signature is.
                a.body == b.body && testkit::same_ignoring_case(a, b, "x-hub-signature-256")
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            let p = provider();
            testkit::exercise(&*p, decode, &req);
        }
    }
}
