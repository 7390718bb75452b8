use super::*;
use crate::config::provider::ProviderOptions;
use crate::providers::testkit::{self, Req};
use proptest::prelude::*;

const TOKEN: &str = "12345";

fn provider(url: &str) -> std::sync::Arc<dyn Provider> {
    testkit::provider(
        ProviderOptions::Twilio(TwilioOptions {
            public_url: Some(url::Url::parse(url).unwrap()),
        }),
        TOKEN,
    )
}

fn form_request(body: &str, signature: &str, query: &str) -> Req {
    let mut req = Req::post(&Signed {
        headers: vec![
            ("X-Twilio-Signature".to_owned(), signature.to_owned()),
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        body: body.as_bytes().to_vec(),
    });
    req.query = query.to_owned();
    req
}

/// Twilio's documented example ("Webhooks security", twilio.com/docs/usage/webhooks/webhooks-security,
/// and the request-validator tests of twilio-python): auth token 12345,
/// https://mycompany.com/myapp.php?foo=1&bar=2, five fields.
#[test]
fn twilios_documented_signature() {
    let p = provider("https://mycompany.com/myapp.php");
    let body = "Digits=1234&To=%2B18005551212&From=%2B14158675309&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
    let req = form_request(body, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "foo=1&bar=2");
    let verified = p.verify(&req.request()).unwrap();
    let fields: Value = serde_json::from_slice(&verified.document).unwrap();
    assert_eq!(fields["To"], "+18005551212");
    // The URL is part of what is signed: another query, another path.
    let moved = form_request(body, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "foo=1&bar=3");
    assert!(p.verify(&moved.request()).is_err());
    let elsewhere = provider("https://mycompany.com/other.php");
    assert!(elsewhere.verify(&req.request()).is_err());
    let tampered = form_request(
        &body.replace("1234", "9999"),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        "foo=1&bar=2",
    );
    assert!(p.verify(&tampered.request()).is_err());
}

/// JSON bodies: the URL with `bodySHA256` is signed, the body's hash
/// checked against it.
#[test]
fn json_bodies_are_proven_by_their_hash_in_the_url() {
    let url = "https://mycompany.com/myapp.php";
    let p = Twilio {
        url: url.to_owned(),
        secret: Secret::new(TOKEN.as_bytes()),
    };
    let body = br#"{"property": "value", "boolean": true}"#;
    // twilio-python's test body and its SHA-256.
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(hex::encode(Sha256::digest(body)), hash);
    let query = format!("foo=1&bodySHA256={hash}");
    let signature = STANDARD.encode(
        p.mac(&format!("{url}?{query}"), &[])
            .finalize()
            .into_bytes(),
    );
    let mut req = Req::post(&Signed::json(
        body,
        [("X-Twilio-Signature".to_owned(), signature)],
    ));
    req.query = query.clone();
    let verified = p.verify(&req.request()).unwrap();
    assert_eq!(&verified.document[..], body);
    assert_eq!(decode(&verified.document).unwrap()[0].kind, "twilio");
    let mut other = req.clone();
    other.body = br#"{"property": "value", "boolean": false}"#.to_vec();
    assert!(p.verify(&other.request()).is_err());
    let mut unhashed = req.clone();
    unhashed.query = "foo=1".to_owned();
    assert!(p.verify(&unhashed.request()).is_err());
}

#[test]
fn messages_and_status_callbacks_decode() {
    let p = provider("https://hooks.example.com/twilio");
    let incoming = r#"{"SmsMessageSid":"SM1","NumMedia":"1","ProfileName":"Ada","WaId":"14155550100","Body":"Hello","To":"whatsapp:+14155238886","From":"whatsapp:+14155550100","MessageSid":"SMaaaa","MediaUrl0":"https://api.twilio.com/media/1","MediaContentType0":"image/jpeg"}"#;
    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, incoming)).unwrap();
    assert_eq!(events[0].kind, "incoming-message");
    assert_eq!(events[0].provider_id.as_deref(), Some("SMaaaa"));
    let Payload::MessageReceived(m) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(m.text.as_deref(), Some("Hello"));
    assert_eq!(m.contact.phone.as_deref(), Some("+14155550100"));
    assert_eq!(m.contact.name.as_deref(), Some("Ada"));
    assert_eq!(
        m.media_url.as_deref(),
        Some("https://api.twilio.com/media/1")
    );
    assert_eq!(m.content_type, "image/jpeg");
    // The fields as JSON, in their order.
    assert!(
        events[0].raw_json.starts_with(r#"{"Body":"Hello","From":"#),
        "{}",
        events[0].raw_json
    );

    let status = r#"{"MessageSid":"SMaaaa","MessageStatus":"delivered","To":"+1"}"#;
    let events = testkit::receive(&*p, decode, &testkit::signed(&*p, status)).unwrap();
    assert_eq!(events[0].kind, "status-callback");
    assert_eq!(events[0].provider_id.as_deref(), Some("SMaaaa-delivered"));
    assert!(matches!(&events[0].payload, Payload::MessageStatus(s) if s.status == "delivered"));
}

#[test]
fn repeated_fields_are_signed_once_each_sorted() {
    assert_eq!(
        signed_fields(b"x=2&x=1&x=1&a=3"),
        vec![
            ("a".to_owned(), "3".to_owned()),
            ("x".to_owned(), "1".to_owned()),
            ("x".to_owned(), "2".to_owned())
        ]
    );
}

proptest! {
    #[test]
    fn mutations_are_refused(data in "[ -~]{1,40}", mutation in testkit::mutation()) {
        let p = provider("https://hooks.example.com/twilio");
        let body = serde_json::json!({"MessageSid": "SM1", "Body": data, "From": "+1"}).to_string();
        let original = testkit::signed(&*p, &body);
        testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
            // The same fields however spelt (`%20` or `+`, reordered).
            a.headers.get(HEADER) == b.headers.get(HEADER)
                && signed_fields(&a.body) == signed_fields(&b.body)
        })?;
    }

    #[test]
    fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
        let p = provider("https://hooks.example.com/twilio");
        testkit::exercise(&*p, decode, &req);
    }
}
