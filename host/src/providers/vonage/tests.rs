use std::time::Duration;

use super::*;
use crate::config::provider::{ProviderId, ProviderOptions};
use crate::providers::testkit::{self, Req};
use proptest::prelude::*;

const SECRET: &str = "vonage-signature-secret-0123456789";
const INBOUND: &str = r#"{"channel":"whatsapp","message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900000","from":"447700900001","timestamp":"2025-02-03T12:14:25Z","profile":{"name":"Jane Smith"},"message_type":"text","text":"Hello from WhatsApp"}"#;
const STATUS: &str = r#"{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900001","from":"447700900000","timestamp":"2025-02-03T12:14:25Z","status":"delivered","channel":"whatsapp"}"#;

fn provider() -> Box<dyn Provider> {
    build(&Secret::new(SECRET.as_bytes()))
}

fn vonage() -> Vonage {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    Vonage {
        key: DecodingKey::from_secret(SECRET.as_bytes()),
        signing_key: EncodingKey::from_secret(SECRET.as_bytes()),
        validation,
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn inbound_and_status_decode() {
    let p = testkit::provider(ProviderOptions::bare(ProviderId::Vonage), SECRET);
    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, INBOUND)).unwrap();
    assert_eq!(events[0].kind, "inbound-message");
    assert_eq!(
        events[0].provider_id.as_deref(),
        Some("aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab")
    );
    let Payload::MessageReceived(m) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(m.text.as_deref(), Some("Hello from WhatsApp"));
    assert_eq!(m.contact.phone.as_deref(), Some("447700900001"));
    assert_eq!(m.contact.name.as_deref(), Some("Jane Smith"));

    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, STATUS)).unwrap();
    assert_eq!(events[0].kind, "message-status");
    assert_eq!(
        events[0].provider_id.as_deref(),
        Some("aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab-delivered")
    );
    let Payload::MessageStatus(s) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(s.status, "delivered");
    assert_eq!(s.timestamp_ms, Some(1_738_584_865_000));
}

#[test]
fn stale_foreign_and_mismatched_tokens_are_refused() {
    let p = vonage();
    let signed = Req::post(&p.sign(INBOUND.as_bytes(), at(1_738_584_865)).unwrap());
    assert!(
        p.verify_at(&signed.request(), at(1_738_584_865 + 300))
            .is_ok()
    );
    assert!(
        p.verify_at(&signed.request(), at(1_738_584_865 + 301))
            .is_err()
    );
    assert!(
        p.verify_at(&signed.request(), at(1_738_584_865 - 301))
            .is_err()
    );
    // The token of another body.
    let mut other = signed.clone();
    other.body = STATUS.as_bytes().to_vec();
    assert!(p.verify_at(&other.request(), at(1_738_584_865)).is_err());
    // Another secret.
    let foreign = Vonage {
        signing_key: EncodingKey::from_secret(b"another"),
        ..vonage()
    };
    let forged = Req::post(&foreign.sign(INBOUND.as_bytes(), at(1_738_584_865)).unwrap());
    assert!(p.verify_at(&forged.request(), at(1_738_584_865)).is_err());
    // HS512 with the right secret: only HS256 is Vonage's.
    let claims = Claims {
        iat: 1_738_584_865,
        payload_hash: hex::encode(Sha256::digest(INBOUND.as_bytes())),
        jti: None,
        iss: None,
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let hs512 = signed
        .clone()
        .header("authorization", &format!("Bearer {token}"));
    assert!(p.verify_at(&hs512.request(), at(1_738_584_865)).is_err());
}

proptest! {
    #[test]
    fn mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::mutation()) {
        let p = provider();
        let body = serde_json::json!({"message_uuid": "u", "message_type": "text", "text": data}).to_string();
        let original = testkit::signed(&*p, &body);
        testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
            // Trailing whitespace after the token, or `bearer` in lower case.
            let token = |r: &Req| {
                r.headers.get("authorization").map(|v| {
                    String::from_utf8_lossy(v.as_bytes()).get(7..).unwrap_or_default().trim().to_owned()
                })
            };
            a.body == b.body && token(a) == token(b)
        })?;
    }

    #[test]
    fn arbitrary_requests_never_panic(req in testkit::arbitrary_request(), now in any::<u64>()) {
        let p = vonage();
        let _ = p.verify_at(&req.request(), at(now % (1 << 40)));
        testkit::exercise(&p, decode, &req);
    }
}
