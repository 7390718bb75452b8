//! Small readers for provider JSON, which is loosely typed: ids arrive as
//! strings or numbers, fields move between versions.
//!
//! Two ways in: a parsed [`Value`], or an object's members borrowed from
//! the document as raw JSON and each read only when asked for ([`pick`]
//! the few a provider reads, or [`Members`], all of them). The second
//! allocates nothing for the members a provider never looks at, which on
//! a hot route is most of the body; both give the same answers.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor,
};
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

/// Parses a body that must be a JSON object. Lone surrogates read as
/// U+FFFD ([`mend_surrogates`]).
pub fn object(body: &[u8]) -> Result<Value, super::Rejection> {
    let value: Value = serde_json::from_slice(&mend_surrogates(body))
        .map_err(|e| super::Rejection::bad_request(format!("body is not JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(super::Rejection::bad_request("body is not a JSON object"))
    }
}

/// `text` with every lone UTF-16 surrogate escape (`\ud800` not followed
/// by a low one, or `\udc00` without a high one before it) written as
/// `\ufffd`. JavaScript's `JSON.parse` accepts them (and OneRoute signs
/// them, as `JSON.stringify` writes them back), serde_json refuses them:
/// mended, such a body reads as JavaScript would show it, with a
/// replacement character, while the signed text itself is kept as it is.
/// The escape and its replacement are the same length; the text is copied
/// only when it holds one.
pub fn mend_surrogates(text: &[u8]) -> Cow<'_, [u8]> {
    let unit_at = |at: usize| -> Option<u16> {
        let escape = text.get(at..at + 6)?;
        if !escape.starts_with(b"\\u") {
            return None;
        }
        let hex = std::str::from_utf8(&escape[2..]).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut mended: Option<Vec<u8>> = None;
    let mut at = 0;
    while let Some(found) = text
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        at += found;
        let lone = match unit_at(at) {
            Some(0xd800..=0xdbff) => match unit_at(at + 6) {
                Some(0xdc00..=0xdfff) => {
                    at += 12;
                    continue;
                }
                _ => true,
            },
            Some(0xdc00..=0xdfff) => true,
            Some(_) => false,
            // Any other escape is two bytes; a broken one is left for the
            // parser to refuse.
            None => {
                at += 2;
                continue;
            }
        };
        if lone {
            mended.get_or_insert_with(|| text.to_vec())[at..at + 6].copy_from_slice(b"\\ufffd");
        }
        at += 6;
    }
    match mended {
        Some(text) => Cow::Owned(text),
        None => Cow::Borrowed(text),
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

/// A verified document as the text events keep of it. JSON is UTF-8, so
/// the copy is checked once with `str`'s fast check; bytes that are not
/// UTF-8 become U+FFFD rather than refusing the event.
pub fn document_text(document: &[u8]) -> String {
    match std::str::from_utf8(document) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(document).into_owned(),
    }
}

/// `raw`'s members, if it is an object.
pub fn members_of(raw: &RawValue) -> Option<Members<'_>> {
    let text = raw.get();
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// A body's text, for [`pick`], with its lone surrogate escapes mended as
/// [`object`] mends them. JSON is UTF-8: a body that is not is refused as
/// [`object`] refuses it.
pub fn body_text(body: &[u8]) -> Result<Cow<'_, str>, super::Rejection> {
    let text = std::str::from_utf8(body).map_err(|_| refusal(body))?;
    Ok(match mend_surrogates(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Mending writes ASCII escapes over ASCII escapes.
        Cow::Owned(mended) => Cow::Owned(String::from_utf8(mended).map_err(|_| refusal(body))?),
    })
}

/// The members named `keys` of a body that must be a JSON object, each
/// its raw JSON or `None` where absent; refused as [`object`] refuses it.
/// As in a [`Value`]'s map, a repeated key keeps its last value. The other
/// members are checked as [`object`] checks them (escapes decoded) and
/// skipped, not kept: one pass over the body and no map. Text from
/// [`body_text`], not bytes: a skipped string is not checked for UTF-8 as
/// it is skipped, and a lone surrogate escape must be mended first.
pub fn pick<'a, const N: usize>(
    body: &'a str,
    keys: [&str; N],
) -> Result<[Option<&'a RawValue>; N], super::Rejection> {
    let mut reader = serde_json::Deserializer::from_str(body);
    Pick(keys)
        .deserialize(&mut reader)
        .and_then(|picked| reader.end().map(|()| picked))
        .map_err(|_| refusal(body.as_bytes()))
}

/// Why [`object`] refuses `body`, for a reader that refused it first.
fn refusal(body: &[u8]) -> super::Rejection {
    match object(body) {
        Err(rejection) => rejection,
        Ok(_) => super::Rejection::bad_request("body is not a JSON object"),
    }
}

/// [`pick`] inside `raw`, if it is an object.
pub fn pick_of<'a, const N: usize>(
    raw: &'a RawValue,
    keys: [&str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    let text = raw.get();
    if !text.starts_with('{') {
        return None;
    }
    // A raw value is one whole, valid value: nothing trails it.
    Pick(keys)
        .deserialize(&mut serde_json::Deserializer::from_str(text))
        .ok()
}

/// Reads an object into the last value of each of its keys.
struct Pick<'k, const N: usize>([&'k str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Pick<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Pick<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut picked = [None; N];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.0.iter().position(|wanted| *wanted == key.0) {
                Some(at) => {
                    // A raw value is taken without decoding its escapes.
                    let raw: &'de RawValue = map.next_value()?;
                    serde_json::from_str::<Checked>(raw.get()).map_err(A::Error::custom)?;
                    picked[at] = Some(raw);
                }
                None => {
                    map.next_value::<Checked>()?;
                }
            }
        }
        Ok(picked)
    }
}

/// A value read and dropped, its strings decoded as a [`Value`]'s are:
/// serde's `IgnoredAny` skips strings without decoding their escapes, and
/// so takes what [`object`] refuses.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Key<'de>, Checked>()?.is_some() {}
        Ok(Checked)
    }
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
    match mend_surrogates(raw.get().as_bytes()) {
        Cow::Borrowed(_) => serde_json::from_str::<Key<'_>>(raw.get())
            .ok()
            .map(|key| key.0),
        Cow::Owned(mended) => serde_json::from_slice::<String>(&mended)
            .ok()
            .map(Cow::Owned),
    }
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
    fn members_and_picks_read_as_values_do() {
        let body = br#"{"a": "x", "b": 7, "a": "y", "n": null, "e": "", "o": {"k": [1, 2.50]},
                        "q": "\u0041\"", "t": true}"#;
        let value = object(body).unwrap();
        let raw: &RawValue = serde_json::from_slice(body).unwrap();
        let members = members_of(raw).unwrap();
        let keys = ["a", "b", "n", "e", "o", "q", "t", "missing"];
        let body_text = body_text(body).unwrap();
        let picked = pick(&body_text, keys).unwrap();
        let texts = |raws: [Option<&RawValue>; 8]| raws.map(|r| r.map(|r| r.get().to_owned()));
        assert_eq!(texts(pick_of(raw, keys).unwrap()), texts(picked));
        for (key, picked) in keys.into_iter().zip(picked) {
            let member = members.get(key).copied();
            assert_eq!(
                member.map(RawValue::get),
                picked.map(RawValue::get),
                "{key}"
            );
            assert_eq!(
                member.and_then(raw_scalar_text),
                text(&value, &[key]),
                "{key}"
            );
            assert_eq!(
                member.map(raw_any_text),
                value.get(key).map(any_text),
                "{key}"
            );
        }
        let keys: Vec<&str> = members.keys().map(|k| &*k.0).collect();
        let value_keys: Vec<&str> = value.as_object().unwrap().keys().map(|k| &**k).collect();
        assert_eq!(keys, value_keys);
    }

    #[test]
    fn lone_surrogates_read_as_replacement_characters() {
        let cases = [
            (r#"{"a":"\ud800"}"#, "\u{fffd}"),
            (r#"{"a":"x\udc00\ud800y"}"#, "x\u{fffd}\u{fffd}y"),
            (r#"{"a":"\ud800\u0041"}"#, "\u{fffd}A"),
            (r#"{"a":"\ud83d\ude00"}"#, "😀"),
            (r#"{"a":"\\ud800"}"#, "\\ud800"),
            (r#"{"a":"\uD800\\"}"#, "\u{fffd}\\"),
        ];
        for (body, expected) in cases {
            assert_eq!(object(body.as_bytes()).unwrap()["a"], expected, "{body}");
            let members = members_of(serde_json::from_str(body).unwrap()).unwrap();
            assert_eq!(
                raw_scalar_text(members["a"]).as_deref(),
                Some(expected),
                "{body}"
            );
        }
        // Nothing to mend: not copied.
        assert!(matches!(
            mend_surrogates(br#"{"a":"\ud83d\ude00"}"#),
            Cow::Borrowed(_)
        ));
        // A broken escape is still refused, one at the very end too.
        assert!(object(br#"{"a":"\ud80"}"#).is_err());
        assert!(object(b"{\"a\":\"\\").is_err());
        assert!(object(br#"{"a":"\ud800\"#).is_err());
    }

    #[test]
    fn picks_refuse_as_object_does() {
        // Skipped members are checked too (their UTF-8 as well), and
        // nothing may trail the object.
        let bodies = [
            &b"[1]"[..],
            b"nope",
            b"",
            b"\"s\"",
            br#"{"a": 1, "b": [1,}"#,
            br#"{"a": 1} x"#,
            b"{\"a\": 1, \"b\": \"\xff\"}",
        ];
        for body in bodies {
            assert_eq!(
                body_text(body)
                    .and_then(|text| pick(&text, ["a"]).map(|_| ()))
                    .unwrap_err()
                    .to_string(),
                object(body).unwrap_err().to_string()
            );
        }
        let not_objects: [&RawValue; 2] = [
            serde_json::from_str("[1]").unwrap(),
            serde_json::from_str("\"{\"").unwrap(),
        ];
        for raw in not_objects {
            assert!(pick_of(raw, ["a"]).is_none(), "{raw}");
        }
    }
}
