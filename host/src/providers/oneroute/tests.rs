//! OneRoute provider tests: node's JSON.stringify vectors
//! (tests/vectors), the seed payloads, and property tests.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::config::provider::{ProviderId, ProviderOptions};
use crate::providers::testkit::{self, Req};
use crate::secret::Secret;

const SECRET: &str = "OneRoute Secret Key";

fn oneroute(secret: &str) -> std::sync::Arc<dyn Provider> {
    testkit::provider(ProviderOptions::bare(ProviderId::Oneroute), secret)
}

fn vector_file(name: &str) -> String {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn post(body: &str, signature: &str) -> Req {
    Req {
        method: axum::http::Method::POST,
        headers: Default::default(),
        query: String::new(),
        body: body.as_bytes().to_vec(),
    }
    .header("content-type", "application/json")
    .header(HEADER, signature)
}

/// Every vector made by node's JSON.stringify (tests/vectors/oneroute.js)
/// is accepted exactly when a JavaScript receiver accepts it, and our
/// re-serialisation is byte for byte node's.
#[test]
fn node_vectors_verify_exactly_as_in_javascript() {
    let vectors = vector_file("oneroute.jsonl");
    let mut counts = [0; 2];
    for line in vectors.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let name = v["name"].as_str().unwrap();
        let body = v["body"].as_str().unwrap();
        if let Some(expected) = v["stringified"].as_str() {
            assert_eq!(
                jsjson::restringify(body.as_bytes()).as_deref(),
                Some(expected),
                "{name}"
            );
        }
        let provider = oneroute(v["secret"].as_str().unwrap());
        let req = post(body, v["signature"].as_str().unwrap());
        let valid = v["valid"].as_bool().unwrap();
        assert_eq!(provider.verify(&req.request()).is_ok(), valid, "{name}");
        counts[usize::from(valid)] += 1;
    }
    // The file holds both kinds, and plenty of each.
    assert!(counts[0] >= 30 && counts[1] >= 30, "{counts:?}");
}

/// Random doubles printed by node's `String(x)`.
#[test]
fn numbers_print_as_node_prints_them() {
    let numbers = vector_file("js-numbers.txt");
    let mut seen = 0;
    for line in numbers.lines() {
        let (bits, expected) = line.split_once(' ').unwrap();
        let x = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        let mut out = String::new();
        jsjson::write_number(&mut out, x);
        assert_eq!(out, expected, "bits {bits}");
        seen += 1;
    }
    assert!(seen > 5000);
}

#[test]
fn the_proven_document_is_what_was_signed() {
    let provider = oneroute(SECRET);
    let original = testkit::signed(&*provider, r#"{"b": 1.0, "a": "x", "1": true}"#);
    assert_eq!(original.body, br#"{"1":true,"b":1,"a":"x"}"#);
    let respaced = Req {
        body: b"{ \"b\" : 1.00 ,\n \"a\":\"x\", \"1\" : true }".to_vec(),
        ..original.clone()
    };
    let verified = provider.verify(&respaced.request()).unwrap();
    assert_eq!(&*verified.document, &original.body[..]);
}

#[test]
fn missing_or_malformed_signature_is_unauthorized() {
    let provider = oneroute(SECRET);
    let valid = testkit::signed(&*provider, "{}");
    let mut missing = valid.clone();
    missing.headers.remove(HEADER);
    assert!(matches!(
        provider.verify(&missing.request()),
        Err(Rejection::Unauthorized(_))
    ));
    let not_hex = valid.clone().header(HEADER, "zz");
    assert!(matches!(
        provider.verify(&not_hex.request()),
        Err(Rejection::Unauthorized(_))
    ));
    let text = valid.header("content-type", "text/plain");
    assert!(matches!(
        provider.verify(&text.request()),
        Err(Rejection::UnsupportedMediaType(_))
    ));
}

#[test]
fn seed_new_message_decodes_to_a_message() {
    let vectors = vector_file("oneroute.jsonl");
    let seed: Value = serde_json::from_str(vectors.lines().next().unwrap()).unwrap();
    let provider = oneroute(seed["secret"].as_str().unwrap());
    let req = post(
        seed["body"].as_str().unwrap(),
        seed["signature"].as_str().unwrap(),
    );
    let events = testkit::receive(&*provider, decode, &req).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "newMessage");
    let Payload::MessageReceived(message) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(message.text.as_deref(), Some("Hello World!"));
    assert_eq!(message.content_type, "text");
    assert_eq!(message.contact.name.as_deref(), Some("Message Sender"));
    assert_eq!(message.contact.id.as_deref(), Some("customer@example.com"));
    assert_eq!(
        message.conversation_id.as_deref(),
        Some("bf9d96d9-e495-489a-a22a-206b0ea44d90")
    );
    assert_eq!(message.media_url, None);
}

#[test]
fn campaign_report_and_unknown_events() {
    let provider = oneroute(SECRET);
    let report = testkit::signed(
        &*provider,
        r#"{"event":"compaignDeliveryReport","message":"campaign completed.","campaignReportUrl":"https://api.oneroute.io/api/public/logs?page[size]=10&page[number]=1&campaign_id=c-77","conversation":{"id":"id","firm_id":"firm id"}}"#,
    );
    let events = testkit::receive(&*provider, decode, &report).unwrap();
    assert_eq!(events[0].kind, "compaignDeliveryReport");
    let Payload::Campaign(campaign) = &events[0].payload else {
        panic!("{:?}", events[0].payload)
    };
    assert_eq!(campaign.campaign_id.as_deref(), Some("c-77"));
    assert_eq!(campaign.label.as_deref(), Some("campaign completed."));

    let unknown = testkit::signed(&*provider, r#"{"event":"conversationClosed","id":1}"#);
    let events = testkit::receive(&*provider, decode, &unknown).unwrap();
    assert_eq!(
        (events[0].kind.as_str(), &events[0].payload),
        ("conversationClosed", &Payload::Other)
    );
    let nameless = testkit::signed(&*provider, r#"{"id":1}"#);
    let events = testkit::receive(&*provider, decode, &nameless).unwrap();
    assert_eq!(
        (events[0].kind.as_str(), &events[0].payload),
        ("oneroute", &Payload::Other)
    );
}

fn with_slow_checks(limit: usize) -> std::sync::Arc<dyn Provider> {
    crate::providers::build(&crate::providers::ProviderConfig {
        options: &ProviderOptions::bare(ProviderId::Oneroute),
        secret: Some(Secret::new(SECRET.as_bytes())),
        slow_checks: crate::providers::SlowChecks::new(limit),
    })
    .unwrap_or_else(|issue| panic!("{}", issue.reason))
}

/// Checking against the re-serialised body runs only with a place free:
/// with none, a body whose raw bytes do not match is refused at once as
/// busy, whether or not its re-serialised form would have; a body signed
/// as sent never needs one.
#[test]
fn the_reserialised_check_waits_for_no_one() {
    let busy = with_slow_checks(0);
    let signed = testkit::signed(&*busy, r#"{"event":"newMessage","n":1.0}"#);
    assert!(busy.verify(&signed.request()).is_ok());
    let respaced = Req {
        body: br#"{ "event" : "newMessage", "n" : 1.0 }"#.to_vec(),
        ..signed.clone()
    };
    assert!(matches!(
        busy.verify(&respaced.request()),
        Err(Rejection::Busy(_))
    ));
    assert!(with_slow_checks(1).verify(&respaced.request()).is_ok());
    let forged = respaced.clone().header(HEADER, &"ab".repeat(64));
    assert!(matches!(
        busy.verify(&forged.request()),
        Err(Rejection::Busy(_))
    ));
    assert!(matches!(
        with_slow_checks(1).verify(&forged.request()),
        Err(Rejection::Unauthorized(_))
    ));
}

/// JavaScript's JSON.parse keeps a lone surrogate and JSON.stringify
/// writes it back as `\ud800`: OneRoute signs that text. It verifies, and
/// decodes with U+FFFD in its place; the event keeps the signed text.
#[test]
fn lone_surrogates_verify_and_decode() {
    let provider = oneroute(SECRET);
    // What `JSON.stringify({event: "newMessage", message: {content:
    // "a\ud800b", id: "\udc00"}})` gives in node.
    let sent = r#"{"event":"newMessage","message":{"content":"a\ud800b","id":"\udc00"}}"#;
    let digest = mac::sign(HmacAlgorithm::Sha512, SECRET.as_bytes(), &[sent.as_bytes()]);
    let signature = mac::encode(SignatureEncoding::Hex, &digest);
    assert_eq!(testkit::signed(&*provider, sent).body, sent.as_bytes());
    for body in [sent.to_owned(), sent.replace(',', " , ")] {
        let events = testkit::receive(&*provider, decode, &post(&body, &signature)).unwrap();
        let Payload::MessageReceived(message) = &events[0].payload else {
            panic!("{:?}", events[0].payload)
        };
        assert_eq!(message.text.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(message.id.as_deref(), Some("\u{fffd}"));
        assert_eq!(events[0].raw_json, sent);
    }
}

/// A megabyte of the values that cost most to re-serialise (escapes,
/// numbers, many small objects, index keys) comes back whole and right;
/// cut short, it is refused.
#[test]
fn a_large_body_reserialises_whole() {
    let item = r#"{"k\u0041":"\u00e9\n\ud83d\ude00 text","n":1.5e300,"i":12345,"a":[true,null,-0.0],"0":1}"#;
    let mut body = String::from("[");
    while body.len() < 1 << 20 {
        body.push_str(item);
        body.push(',');
    }
    body.push_str("{}]");
    let expected_item =
        "{\"0\":1,\"kA\":\"é\\n😀 text\",\"n\":1.5e+300,\"i\":12345,\"a\":[true,null,0]}";
    let text = jsjson::restringify(body.as_bytes()).unwrap();
    assert!(
        text.starts_with(&format!("[{expected_item},{expected_item},")),
        "{}",
        &text[..200]
    );
    let half = jsjson::restringify(&body.as_bytes()[..body.len() / 2]);
    assert_eq!(half, None);
}

fn sample_body() -> impl Strategy<Value = String> {
    // Objects with the features JSON.stringify normalises.
    let key = prop_oneof!["[a-z]{1,6}", "[0-9]{1,3}", Just("é😀".to_owned())];
    let leaf = prop_oneof![
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:e}")),
        "[ -~é\\n]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("null".to_owned()),
        Just("-0".to_owned()),
        Just("1.0".to_owned()),
    ];
    proptest::collection::vec((key, leaf), 1..6).prop_map(|entries| {
        let fields: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{} : {v}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{ {} }}", fields.join(" ,\n"))
    })
}

proptest! {
    /// A mutated request is refused unless it means the same to a
    /// JavaScript receiver: same hex signature up to case, and a body that
    /// JSON.stringify turns into the same text (only whitespace between
    /// tokens can change that way).
    #[test]
    fn mutations_are_refused(body in sample_body(), mutation in testkit::mutation()) {
        let provider = oneroute(SECRET);
        let signed = testkit::signed(&*provider, &body);
        // Sent as written, so whitespace mutations are in play too.
        let original = Req { body: body.clone().into_bytes(), ..signed };
        testkit::check_refused(&*provider, decode, &original, &mutation, |a, b| {
            testkit::same_ignoring_case(a, b, HEADER)
                && jsjson::restringify(&b.body).is_some()
                && jsjson::restringify(&a.body) == jsjson::restringify(&b.body)
        })?;
    }

    #[test]
    fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
        testkit::exercise(&*oneroute(SECRET), decode, &req);
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in "[\\[\\]{}\":,0-9eE.+\\- tfalsnru\\\\/bfnrtu]{0,300}") {
        let _ = jsjson::restringify(text.as_bytes());
    }
}
