//! Form bodies (`application/x-www-form-urlencoded`), which Twilio, Slack's
//! slash commands and interactivity, and goflow (when a route says so)
//! send: proven over their raw bytes by the provider, then read into the
//! JSON object that is their document and their events' `raw_json`.
//!
//! The object holds the fields in the order they came, each name once:
//! a name sent once is a string, a name sent several times an array of
//! its values in order. `+` is a space and `%XX` a byte, as browsers
//! encode forms; text that is not UTF-8 reads as U+FFFD.

use std::borrow::Cow;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::{Rejection, Request, SignError};

/// Whether the request says its body is a form.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The fields of a form body, decoded, in the order they came.
pub fn fields(body: &[u8]) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    url::form_urlencoded::parse(body).collect()
}

/// A form body as the JSON object of its fields (see the module doc).
pub fn to_json(body: &[u8]) -> String {
    let mut order: Vec<(Cow<'_, str>, Vec<Cow<'_, str>>)> = Vec::new();
    for (name, value) in fields(body) {
        // Forms are short (a few dozen fields): a scan beats a map here.
        match order.iter_mut().find(|(seen, _)| *seen == name) {
            Some((_, values)) => values.push(value),
            None => order.push((name, vec![value])),
        }
    }
    let mut out = String::with_capacity(body.len() + 16);
    out.push('{');
    for (i, (name, mut values)) in order.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quoted(&name));
        out.push(':');
        if values.len() == 1 {
            out.push_str(&quoted(&values.remove(0)));
        } else {
            out.push('[');
            let values: Vec<String> = values.iter().map(|value| quoted(value)).collect();
            out.push_str(&values.join(","));
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serialises")
}

/// The document of a request from a provider that sends forms as well
/// as JSON: a form's fields as JSON, or a JSON body as it is; anything
/// else 415.
pub fn document<'r>(req: &Request<'r>) -> Result<Cow<'r, [u8]>, Rejection> {
    if is_form(req.headers) {
        return Ok(Cow::Owned(to_json(req.body).into_bytes()));
    }
    super::require_json_content_type(req.headers)?;
    Ok(Cow::Borrowed(req.body))
}

/// The form a sender makes of a JSON object (for `wirehook sign`): each
/// member a field, an array a repeated field, scalars as their text.
pub fn from_json(payload: &[u8]) -> Result<String, SignError> {
    let object: Map<String, Value> = serde_json::from_slice(payload).map_err(|e| {
        if e.is_data() {
            SignError::NotObject
        } else {
            SignError::NotJson(Some(e.to_string()))
        }
    })?;
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in &object {
        let values = match value {
            Value::Array(values) => values.iter().collect(),
            value => vec![value],
        };
        for value in values {
            form.append_pair(name, &super::json::any_text(value));
        }
    }
    Ok(form.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_names_become_arrays_in_order() {
        let json = to_json(b"b=2&a=1&b=3&c=&b=4&a");
        assert_eq!(json, r#"{"b":["2","3","4"],"a":["1",""],"c":""}"#);
    }

    #[test]
    fn plus_and_percent_decode() {
        let json = to_json(b"To=%2B14155238886&Body=hello+world%21&Emoji=%F0%9F%91%8B&Bad=%zz%e9");
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["To"], "+14155238886");
        assert_eq!(value["Body"], "hello world!");
        assert_eq!(value["Emoji"], "👋");
        assert_eq!(value["Bad"], "%zz\u{fffd}");
        assert_eq!(to_json(b""), "{}");
    }

    #[test]
    fn only_form_content_types_are_forms() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", value.parse().unwrap());
            headers
        };
        assert!(is_form(&headers("application/x-www-form-urlencoded")));
        assert!(is_form(&headers(
            "Application/X-WWW-Form-Urlencoded; charset=utf-8"
        )));
        assert!(!is_form(&headers("application/json")));
        assert!(!is_form(&headers("multipart/form-data; boundary=x")));
        assert!(!is_form(&HeaderMap::new()));
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof!["[a-zA-Z0-9_]{1,6}", "[ -~]{0,8}", "\\PC{0,6}"]
    }

    proptest! {
        /// Fields encoded as a browser would come back as the same names
        /// and values, in their order, repeated names grouped.
        #[test]
        fn fields_round_trip(pairs in proptest::collection::vec((field(), field()), 0..12)) {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &pairs {
                form.append_pair(name, value);
            }
            let body = form.finish();
            let json = to_json(body.as_bytes());
            let object: Map<String, Value> = serde_json::from_str(&json).unwrap();
            // Their order: each name where it first came.
            let mut names: Vec<&String> = Vec::new();
            for (name, _) in &pairs {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            let text = serde_json::to_string(&object).unwrap();
            let mut at = 0;
            for name in &names {
                let key = serde_json::to_string(name).unwrap();
                let found = json[at..].find(&format!("{key}:"));
                prop_assert!(found.is_some(), "{name} out of order in {json}");
                at += found.unwrap() + key.len();
            }
            prop_assert_eq!(object.len(), names.len(), "{}", text);
            for name in names {
                let sent: Vec<&String> =
                    pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v).collect();
                let got = &object[name.as_str()];
                if sent.len() == 1 {
                    prop_assert_eq!(got, &Value::String(sent[0].clone()));
                } else {
                    let expected: Vec<Value> =
                        sent.iter().map(|v| Value::String((*v).clone())).collect();
                    prop_assert_eq!(got, &Value::Array(expected));
                }
            }
            // A sender's form of that object holds the same fields.
            let again = from_json(json.as_bytes()).unwrap();
            prop_assert_eq!(fields(again.as_bytes()).len(), pairs.len());
            let reread: Map<String, Value> =
                serde_json::from_str(&to_json(again.as_bytes())).unwrap();
            prop_assert_eq!(reread, object);
        }

        #[test]
        fn any_bytes_are_a_json_object(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let json = to_json(&body);
            prop_assert!(serde_json::from_str::<Map<String, Value>>(&json).is_ok(), "{}", json);
        }
    }
}
