//! Small readers for provider JSON, which is loosely typed: ids arrive as
//! strings or numbers, fields move between versions.

use serde_json::Value;

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
}
