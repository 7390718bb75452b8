//! Standard Webhooks (the open specification used by Svix, Resend, Clerk
//! and others): `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//!
//! The secret is `whsec_<base64>`; the key is the decoded base64 part (the
//! prefix is optional). A timestamp more than five minutes from now, in
//! either direction, is refused, so a captured request cannot be replayed
//! later. The signature header may list several space-separated
//! signatures while keys rotate: any `v1` match accepts; other versions
//! (`v1a`, asymmetric) are skipped.
//!
//! The delivery id is `webhook-id`, which is signed. Bodies are any JSON:
//! `kind` is the body's `type` field where there is one, and the payload
//! is `other` (the specification fixes no event schema).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ConfigIssue, Provider, Rejection, Request, SignError, Signed, Verified, json, mac};
use crate::algorithm::HmacAlgorithm;
use crate::event::{Decoded, Payload};
use crate::secret::Secret;

/// How far a `webhook-timestamp` may be from now, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);
const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";
const KIND: &str = "standard-webhooks";

pub fn build(secret: &Secret) -> Result<Box<dyn Provider>, ConfigIssue> {
    let text = std::str::from_utf8(secret.expose()).ok();
    let key = text
        .map(|t| t.strip_prefix("whsec_").unwrap_or(t))
        .and_then(mac::decode_base64_key)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| ConfigIssue {
            field: "secret",
            // Never the value: only what is wrong with its shape.
            reason: "a Standard Webhooks secret is `whsec_` followed by base64".to_owned(),
        })?;
    Ok(Box::new(StandardWebhooks { key }))
}

struct StandardWebhooks {
    key: Vec<u8>,
}

impl StandardWebhooks {
    fn verify_at<'r>(&self, req: &Request<'r>, now: SystemTime) -> Result<Verified<'r>, Rejection> {
        let header = |name: &str| req.proof_header(name);
        let id = header(ID)?;
        let timestamp = header(TIMESTAMP)?;
        let signatures = header(SIGNATURE)?;
        if id.is_empty() {
            return Err(Rejection::unauthorized(format!("empty `{ID}`")));
        }
        let sent = timestamp
            .parse::<u64>()
            .ok()
            .filter(|_| timestamp.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| Rejection::unauthorized(format!("`{TIMESTAMP}` is not Unix seconds")))?;
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if sent.saturating_add(TOLERANCE.as_secs()) < now {
            return Err(Rejection::unauthorized("timestamp too old (replay?)"));
        }
        if sent > now.saturating_add(TOLERANCE.as_secs()) {
            return Err(Rejection::unauthorized("timestamp too far in the future"));
        }
        let signed: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", req.body];
        // Hashed once, however many signatures the header lists: a refusal
        // costs one pass over the body.
        let expected = mac::sign(HmacAlgorithm::Sha256, &self.key, &signed);
        let matched = signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|signature| bool::from(expected.ct_eq(&signature)));
        if !matched {
            return Err(Rejection::unauthorized("no signature matches"));
        }
        super::require_json_content_type(req.headers)?;
        Ok(Verified {
            delivery_id: Some(id.to_owned()),
            ..Verified::body(req)
        })
    }
}

impl Provider for StandardWebhooks {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.verify_at(req, SystemTime::now())
    }

    /// A fresh `msg_…` id and the current time, as a sender would.
    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let id = format!(
            "msg_{}",
            &hex::encode(
                Sha256::new()
                    .chain_update(since_epoch.as_nanos().to_be_bytes())
                    .chain_update(payload)
                    .finalize()
            )[..24]
        );
        let timestamp = since_epoch.as_secs().to_string();
        let digest = mac::sign(
            HmacAlgorithm::Sha256,
            &self.key,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", payload],
        );
        Ok(Signed::json(
            payload,
            [
                ("webhook-id".to_owned(), id),
                ("webhook-timestamp".to_owned(), timestamp),
                (
                    "webhook-signature".to_owned(),
                    format!("v1,{}", STANDARD.encode(digest)),
                ),
            ],
        ))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body: Value = serde_json::from_slice(document)
        .map_err(|e| Rejection::bad_request(format!("body is not JSON: {e}")))?;
    Ok(vec![Decoded {
        kind: json::text(&body, &["type"]).unwrap_or_else(|| KIND.to_owned()),
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

    /// The example secret of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn provider() -> StandardWebhooks {
        StandardWebhooks {
            key: STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// The specification's test vector (from its reference libraries).
    fn spec_request() -> Req {
        Req::post(&Signed::json(br#"{"test": 2432232314}"#, []))
            .header(ID, "msg_p5jXN8AQM9LWM0D4loKWxJek")
            .header(TIMESTAMP, "1614265330")
            .header(SIGNATURE, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    #[test]
    fn specification_vector_verifies_within_tolerance_only() {
        let p = provider();
        let req = spec_request();
        let verified = p.verify_at(&req.request(), at(1_614_265_330)).unwrap();
        assert_eq!(
            verified.delivery_id.as_deref(),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert!(p.verify_at(&req.request(), at(1_614_265_330 + 300)).is_ok());
        assert!(p.verify_at(&req.request(), at(1_614_265_330 - 300)).is_ok());
        assert!(
            p.verify_at(&req.request(), at(1_614_265_330 + 301))
                .is_err(),
            "too old"
        );
        assert!(
            p.verify_at(&req.request(), at(1_614_265_330 - 301))
                .is_err(),
            "from the future"
        );
    }

    #[test]
    fn any_of_several_signatures_accepts() {
        let p = provider();
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let now = at(1_614_265_330);
        for header in [
            format!("v1,Zm9vYmFy {good}"),
            format!("v1a,abc {good} v2,xyz"),
            format!("{good} v1,Zm9vYmFy"),
        ] {
            let req = spec_request().header(SIGNATURE, &header);
            assert!(p.verify_at(&req.request(), now).is_ok(), "{header}");
        }
        for header in [
            "v1,Zm9vYmFy v1,YmFy",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "",
        ] {
            let req = spec_request().header(SIGNATURE, header);
            assert!(p.verify_at(&req.request(), now).is_err(), "{header}");
        }
    }

    #[test]
    fn whsec_secrets_and_kinds() {
        let p = testkit::provider(ProviderOptions::bare(ProviderId::StandardWebhooks), SECRET);
        let req = testkit::signed(&*p, r#"{"type":"invoice.paid","data":{"id":"in_1"}}"#);
        let verified = p.verify(&req.request()).unwrap();
        assert!(verified.delivery_id.unwrap().starts_with("msg_"));
        let events = testkit::receive(&*p, decode, &req).unwrap();
        assert_eq!(
            (events[0].kind.as_str(), &events[0].payload),
            ("invoice.paid", &Payload::Other)
        );
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, "[1,2]")).unwrap();
        assert_eq!(events[0].kind, "standard-webhooks");
        // Without the prefix, the same key.
        let bare = testkit::provider(
            ProviderOptions::bare(ProviderId::StandardWebhooks),
            &SECRET["whsec_".len()..],
        );
        assert!(bare.verify(&req.request()).is_ok());
    }

    #[test]
    fn secrets_that_are_not_base64_are_config_problems() {
        let options = ProviderOptions::bare(ProviderId::StandardWebhooks);
        for secret in ["whsec_not base64!", "whsec_", "s3cret-with-dash"] {
            let issue = crate::providers::build(&crate::providers::ProviderConfig {
                options: &options,
                secret: Some(crate::secret::Secret::new(secret.as_bytes())),
                slow_checks: crate::providers::SlowChecks::default(),
            })
            .err()
            .unwrap();
            assert_eq!(issue.field, "secret");
            assert!(!issue.reason.contains("base64!") && !issue.reason.contains("dash"));
        }
    }

    proptest! {
        #[test]
        fn mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::mutation()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::StandardWebhooks), SECRET);
            let body = serde_json::json!({"type": "t", "data": data}).to_string();
            let original = testkit::signed(&*p, &body);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                // Another signature appended (rotation) still holds the valid one.
                let sig = |r: &Req| r.headers.get(SIGNATURE).map(|v| v.as_bytes().to_vec());
                let listed = sig(b).is_some_and(|s| {
                    s.split(|c| *c == b' ').any(|entry| Some(entry.to_vec()) == sig(a))
                });
                a.body == b.body && a.headers.get(ID) == b.headers.get(ID)
                    && a.headers.get(TIMESTAMP) == b.headers.get(TIMESTAMP) && listed
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
