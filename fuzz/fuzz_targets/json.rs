//! The providers' JSON readers: an object's members picked or borrowed
//! as raw JSON read the same as a parsed `Value`, and a body that one
//! refuses the other refuses with the same reason; lone surrogate
//! escapes read as U+FFFD in both.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use serde_json::value::RawValue;
use wirehook::providers::json;

const KEYS: [&str; 6] = ["id", "event", "type", "message", "data", ""];

fuzz_target!(|data: &[u8]| {
    let value = json::object(data);
    // Lone surrogate escapes mended, as `object` mends them.
    let text = match json::body_text(data) {
        Ok(text) => text,
        Err(refused) => {
            assert_eq!(value.map(drop).unwrap_err().to_string(), refused.to_string());
            return;
        }
    };
    let picked = json::pick(&text, KEYS);
    let (value, picked) = match (value, picked) {
        (Ok(value), Ok(picked)) => (value, picked),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (value, picked) => panic!("object: {value:?}, pick: {picked:?}"),
    };
    let raw: &RawValue = serde_json::from_str(&text).expect("an object is a raw value");
    let members = json::members_of(raw).expect("an object has members");
    let by_pick_of = json::pick_of(raw, KEYS).expect("an object picks");
    let text = |raws: [Option<&RawValue>; 6]| raws.map(|r| r.map(|r| r.get().to_owned()));
    assert_eq!(text(by_pick_of), text(picked));
    for (key, picked) in KEYS.into_iter().zip(picked) {
        let member = members.get(key).copied();
        assert_eq!(
            member.map(RawValue::get),
            picked.map(RawValue::get),
            "{key}"
        );
        assert_eq!(
            member.and_then(json::raw_scalar_text),
            json::text(&value, &[key]),
            "{key}"
        );
        assert_eq!(
            member.map(json::raw_any_text),
            value.get(key).map(json::any_text),
            "{key}"
        );
        if let Some(member) = member {
            let parsed: Value = serde_json::from_str(member.get()).expect("a member is JSON");
            assert_eq!(Some(&parsed), value.get(key), "{key}");
            if let Some(inner) = json::members_of(member) {
                let inner_keys: Vec<&str> = inner.keys().map(|k| &*k.0).collect();
                let value_keys: Vec<&str> = parsed
                    .as_object()
                    .expect("members come from an object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(inner_keys, value_keys, "{key}");
            }
        }
    }
    let keys: Vec<&str> = members.keys().map(|k| &*k.0).collect();
    let value_keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, value_keys);
    let _ = json::document_text(data);
});
