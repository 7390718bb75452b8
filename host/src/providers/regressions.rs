//! Inputs the fuzz targets (fuzz/) found crashing, each kept as the test
//! of what it showed. Their files are also in `fuzz/corpus/TARGET/`.

use std::time::SystemTime;

use super::json;
use super::testkit;
use crate::config::provider::{ProviderId, ProviderOptions};

/// `provider_signed`: Truora signed a JSON array as a JWT's claims, a
/// token its own verify refuses; a payload that is not an object is not
/// signed.
#[test]
fn truora_signs_only_objects() {
    let provider = testkit::provider(
        ProviderOptions::bare(ProviderId::Truora),
        "c48863adab6b101b",
    );
    let payload = br#"[{"event":"x"},1,"two",null,true,false]"#;
    assert_eq!(
        provider.sign(payload, SystemTime::now()),
        Err(super::SignError::NotObject)
    );
    let signed = testkit::signed(&*provider, r#"{"event":"x"}"#);
    assert!(provider.verify(&signed.request()).is_ok());
}

/// `json`: a lone surrogate in a member `pick` skipped, or in one it
/// took, passed `pick` while `object` refused the body. Both now read it
/// as U+FFFD, from the text [`json::body_text`] mends.
#[test]
fn picks_read_lone_surrogates_as_object_does() {
    for body in [
        r#"{"results":{"order":{"value":"\ud800CU001"}}}"#,
        r#"{"id":{"value":"\ud800"}}"#,
        r#"{"id":["\udc00"]}"#,
        r#"{"x":{"\ud800":1}}"#,
        r#"{"id":"\ud800"}"#,
    ] {
        let object = json::object(body.as_bytes()).unwrap();
        let text = json::body_text(body.as_bytes()).unwrap();
        let [id] = json::pick(&text, ["id"]).unwrap();
        let picked: Option<serde_json::Value> =
            id.map(|raw| serde_json::from_str(raw.get()).unwrap());
        assert_eq!(picked.as_ref(), object.get("id"), "{body}");
    }
    let paired = r#"{"id":"\ud83d\ude00","x":["\ud83d\ude00"]}"#;
    assert!(json::object(paired.as_bytes()).is_ok());
    let [id] = json::pick(paired, ["id"]).unwrap();
    assert_eq!(id.and_then(json::raw_scalar_text).as_deref(), Some("😀"));
}
