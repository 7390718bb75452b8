//! The JavaScript re-serialiser (`JSON.stringify(JSON.parse(body))`):
//! its output is a fixed point, is what writing its parsed values gives,
//! reads back with serde_json as the same value the body holds, and it
//! refuses no document serde_json accepts.

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wirehook::providers::json;
use wirehook::providers::jsjson::{self, JsValue};

fuzz_target!(|data: &[u8]| {
    let from_serde = serde_json::from_slice::<Value>(data);
    let Some(text) = jsjson::restringify(data) else {
        if let Ok(value) = &from_serde {
            assert!(
                depth(value) > jsjson::MAX_DEPTH,
                "JSON.parse refused a document serde_json reads"
            );
        }
        return;
    };
    assert_eq!(
        jsjson::restringify(text.as_bytes()).as_deref(),
        Some(text.as_str()),
        "re-serialising is not idempotent"
    );
    let decoded = String::from_utf8_lossy(data);
    let decoded = decoded.strip_prefix('\u{feff}').unwrap_or(&decoded);
    assert_eq!(
        jsjson::parse(decoded).map(|value| jsjson::stringify(&value)),
        Some(text.clone()),
        "written straight from the text, it differs from what its values give"
    );
    let value = jsjson::parse(&text).expect("its own output parses");
    match serde_json::from_str::<Value>(&text) {
        Ok(out) => {
            if let Ok(input) = &from_serde {
                assert!(same(input, &out), "{input} reads back as {out}");
            }
        }
        // serde_json refuses lone surrogates, which JavaScript keeps.
        Err(e) => assert!(has_lone_surrogate(&value), "{e}: {text}"),
    }
    if let Err(e) = &from_serde
        && std::str::from_utf8(data).is_ok_and(|text| !text.starts_with('\u{feff}'))
    {
        // JSON.parse takes what serde_json does not only where JavaScript
        // has a value serde_json has not: a lone surrogate (perhaps in a
        // value a repeated key then replaced), or a number out of f64's
        // range (Infinity).
        let message = e.to_string();
        assert!(
            message.contains("surrogate")
                || message.contains("unexpected end of hex escape")
                || message.contains("number out of range")
                || message.contains("recursion limit"),
            "jsjson accepts what serde_json refuses: {message}"
        );
    }
});

/// The same JSON value, numbers compared as the doubles JavaScript holds.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (a, b) => a == b,
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_lone_surrogate(value: &JsValue) -> bool {
    // Strings are held as JSON.stringify writes them: a lone surrogate
    // as its escape, which mending replaces.
    let lone = |text: &str| matches!(json::mend_surrogates(text.as_bytes()), Cow::Owned(_));
    match value {
        JsValue::String(units) => lone(units),
        JsValue::Array(items) => items.iter().any(has_lone_surrogate),
        JsValue::Object(entries) => entries
            .iter()
            .any(|(key, value)| lone(key) || has_lone_surrogate(value)),
        _ => false,
    }
}
