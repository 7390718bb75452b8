//! Stripe: `Stripe-Signature: t=<Unix seconds>,v1=<hex HMAC-SHA256 of
//! "{t}.{body}">` with the endpoint's signing secret (`whsec_…`, used as
//! it is written). While a secret rolls, the header lists several `v1`
//! entries: any one matching accepts; other schemes (`v0`) are skipped. A
//! `t` more than five minutes from now is refused.
//!
//! Events are JSON: the kind is the event's `type` (`invoice.paid`), the
//! delivery id its `id` (`evt_…`, the same on each retry); the payload
//! is `other`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Provider, Rejection, Request, SignError, Signed, Verified, json, mac, time};
use crate::algorithm::HmacAlgorithm;
use crate::event::{Decoded, Payload};
use crate::secret::Secret;

const HEADER: &str = "stripe-signature";
const KIND: &str = "stripe";

pub fn build(secret: Secret) -> Box<dyn Provider> {
    Box::new(Stripe { secret })
}

struct Stripe {
    secret: Secret,
}

impl Stripe {
    fn verify_at<'r>(&self, req: &Request<'r>, now: SystemTime) -> Result<Verified<'r>, Rejection> {
        let header = req
            .headers
            .get(HEADER)
            .ok_or_else(|| Rejection::unauthorized("missing `Stripe-Signature` header"))?
            .to_str()
            .map_err(|_| Rejection::unauthorized("`Stripe-Signature` is not text"))?;
        let entries = header
            .split(',')
            .filter_map(|entry| entry.trim().split_once('='));
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for (scheme, value) in entries {
            match scheme {
                "t" if timestamp.is_none() => timestamp = Some(value),
                "t" => {
                    return Err(Rejection::unauthorized(
                        "more than one `t` in the signature",
                    ));
                }
                "v1" => signatures.extend(hex::decode(value).ok()),
                _ => {}
            }
        }
        let timestamp =
            timestamp.ok_or_else(|| Rejection::unauthorized("no `t` in `Stripe-Signature`"))?;
        time::check_fresh(timestamp, now)?;
        let signed: [&[u8]; 3] = [timestamp.as_bytes(), b".", req.body];
        // Hashed once, however many signatures the header lists.
        let expected = mac::sign(HmacAlgorithm::Sha256, self.secret.expose(), &signed);
        let matched = signatures
            .iter()
            .any(|signature| bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], signature)));
        if !matched {
            return Err(Rejection::unauthorized("no signature matches"));
        }
        super::require_json_content_type(req.headers)?;
        Ok(Verified::body(req))
    }
}

impl Provider for Stripe {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.verify_at(req, SystemTime::now())
    }

    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let t = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let digest = mac::sign(
            HmacAlgorithm::Sha256,
            self.secret.expose(),
            &[t.as_bytes(), b".", payload],
        );
        Ok(Signed::json(
            payload,
            [(
                "Stripe-Signature".to_owned(),
                format!("t={t},v1={}", hex::encode(digest)),
            )],
        ))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body: Value = json::object(document)?;
    Ok(vec![Decoded {
        kind: json::text(&body, &["type"]).unwrap_or_else(|| KIND.to_owned()),
        payload: Payload::Other,
        raw_json: json::document_text(document),
        provider_id: json::text(&body, &["id"]),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit::{self, Req};
    use proptest::prelude::*;
    use std::time::Duration;

    const SECRET: &str = "whsec_test_5a1d8e0c2f";
    const EVENT: &str = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid","data":{"object":{"id":"in_1"}}}"#;

    fn provider() -> Stripe {
        Stripe {
            secret: Secret::new(SECRET.as_bytes()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn kind_and_id_come_from_the_event() {
        let p = testkit::provider(ProviderOptions::bare(ProviderId::Stripe), SECRET);
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, EVENT)).unwrap();
        assert_eq!(events[0].kind, "invoice.paid");
        assert_eq!(
            events[0].provider_id.as_deref(),
            Some("evt_1NG8Du2eZvKYlo2CUI79vXWy")
        );
    }

    #[test]
    fn any_v1_accepts_within_tolerance_only() {
        let p = provider();
        let signed = Req::post(&p.sign(EVENT.as_bytes(), at(1_700_000_000)).unwrap());
        let header = signed.headers[HEADER].to_str().unwrap().to_owned();
        let good = header.split_once(",v1=").unwrap().1.to_owned();
        let now = at(1_700_000_000);
        for rotated in [
            format!("t=1700000000,v1={},v1={good}", "ab".repeat(32)),
            format!("t=1700000000,v0=00,v1={good}"),
            format!("t=1700000000, v1={good}"),
        ] {
            let req = signed.clone().header(HEADER, &rotated);
            assert!(p.verify_at(&req.request(), now).is_ok(), "{rotated}");
        }
        for wrong in [
            format!("v1={good}"),
            format!("t=1700000001,v1={good}"),
            format!("t=1700000000,v0={good}"),
            format!("t=1700000000,t=1700000000,v1={good}"),
        ] {
            let req = signed.clone().header(HEADER, &wrong);
            assert!(p.verify_at(&req.request(), now).is_err(), "{wrong}");
        }
        assert!(p.verify_at(&signed.request(), at(1_700_000_300)).is_ok());
        assert!(p.verify_at(&signed.request(), at(1_700_000_301)).is_err());
        assert!(p.verify_at(&signed.request(), at(1_699_999_699)).is_err());
    }

    proptest! {
        #[test]
        fn mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::mutation()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::Stripe), SECRET);
            let body = serde_json::json!({"id": "evt_1", "type": "t", "data": data}).to_string();
            let original = testkit::signed(&*p, &body);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                // A hex digit's case, or more entries after the valid one.
                let header = |r: &Req| {
                    r.headers.get(HEADER).map(|v| String::from_utf8_lossy(v.as_bytes()).to_lowercase())
                };
                a.body == b.body
                    && header(b).zip(header(a)).is_some_and(|(b, a)| b.starts_with(&a))
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request(), now in any::<u64>()) {
            let p = provider();
            let _ = p.verify_at(&req.request(), at(now % (1 << 40)));
            testkit::exercise(&p, decode, &req);
        }
    }
}
