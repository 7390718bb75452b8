//! Small readers for provider JSON, which is loosely typed: ids arrive as
//! strings or numbers, fields move between versions.
//!
//! Two ways in: a parsed [`Value`], or [`Members`], an object's members
//! borrowed from the document and each read only when asked for. The
//! second allocates nothing for the members a provider never looks at,
//! which on a hot route is most of the body; both give the same answers.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// The first of `keys` present in `object` as a non-empty scalar, as text.
pub fn text(object: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|key| object.get(key))
        .find_map(scalar_text)
}

/// A scalar as text: strings as they are, numbers and booleans printed;
/// null, empty strings, arrays and objects are `None`.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Any value as text: scalars as [`scalar_text`], the rest as compact JSON.
pub fn any_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => scalar_text(other).unwrap_or_else(|| other.to_string()),
    }
}

/// Parses a body that must be a JSON object.
pub fn object(body: &[u8]) -> Result<Value, super::Rejection> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| super::Rejection::bad_request(format!("body is not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(super::Rejection::bad_request("body is not a JSON object"))
    }
}

/// An object's members, each its raw JSON text. As in a [`Value`]'s map,
/// a repeated key keeps its last value and keys iterate in sorted order.
pub type Members<'a> = BTreeMap<Key<'a>, &'a RawValue>;

/// An object key: borrowed from the document unless it holds escapes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key<'a>(pub Cow<'a, str>);

impl Borrow<str> for Key<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Parses a body that must be a JSON object into its borrowed members;
/// refused as [`object`] refuses it.
pub fn members(body: &[u8]) -> Result<Members<'_>, super::Rejection> {
    serde_json::from_slice(body).map_err(|_| match object(body) {
        Err(rejection) => rejection,
        Ok(_) => super::Rejection::bad_request("body is not a JSON object"),
    })
}

/// `raw`'s members, if it is an object.
pub fn members_of(raw: &RawValue) -> Option<Members<'_>> {
    let text = raw.get();
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// [`text`] over borrowed members.
pub fn member_text(members: &Members<'_>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|key| members.get(*key))
        .find_map(|raw| raw_scalar_text(raw))
}

/// [`scalar_text`] of a raw value.
pub fn raw_scalar_text(raw: &RawValue) -> Option<String> {
    match string_of(raw) {
        Some(text) => (!text.is_empty()).then(|| text.into_owned()),
        None => scalar_text(&serde_json::from_str(raw.get()).ok()?),
    }
}

/// [`any_text`] of a raw value.
pub fn raw_any_text(raw: &RawValue) -> String {
    match string_of(raw) {
        Some(text) => text.into_owned(),
        None => serde_json::from_str::<Value>(raw.get())
            .map(|value| any_text(&value))
            .unwrap_or_default(),
    }
}

/// The string `raw` holds, unescaped, if it is one.
fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Key<'_>>(raw.get())
        .ok()
        .map(|key| key.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_takes_first_present_scalar() {
        let v = json!({"a": "", "b": 7, "c": "x"});
        assert_eq!(text(&v, &["missing", "a", "b", "c"]), Some("7".into()));
        assert_eq!(text(&v, &["missing"]), None);
    }

    #[test]
    fn any_text_prints_structures_as_json() {
        assert_eq!(any_text(&json!({"k": [1]})), r#"{"k":[1]}"#);
        assert_eq!(any_text(&json!("s")), "s");
    }

    #[test]
    fn members_read_as_values_do() {
        let body = br#"{"a": "x", "b": 7, "a": "y", "n": null, "e": "", "o": {"k": [1, 2.50]},
                        "q": "\u0041\"", "t": true}"#;
        let value = object(body).unwrap();
        let members = members(body).unwrap();
        for key in ["a", "b", "n", "e", "o", "q", "t", "missing"] {
            assert_eq!(member_text(&members, &[key]), text(&value, &[key]), "{key}");
            let raw = members.get(key);
            assert_eq!(
                raw.map(|r| raw_any_text(r)),
                value.get(key).map(any_text),
                "{key}"
            );
        }
        let keys: Vec<&str> = members.keys().map(|k| &*k.0).collect();
        let value_keys: Vec<&str> = value.as_object().unwrap().keys().map(|k| &**k).collect();
        assert_eq!(keys, value_keys);
    }

    #[test]
    fn members_refuse_as_object_does() {
        for body in [&b"[1]"[..], b"nope", b"", b"\"s\""] {
            assert_eq!(
                members(body).unwrap_err().to_string(),
                object(body).unwrap_err().to_string()
            );
        }
    }
}
