//! Where two JSON replies differ: one change per differing leaf, at its
//! JSON Pointer (RFC 6901), with the value on each side (absent on a side
//! that lacks the member or element).

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Value>,
}

/// Every difference between `expected` and `candidate`, in document order.
pub fn diff(expected: &Value, candidate: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), Some(expected), Some(candidate), &mut changes);
    changes
}

fn walk(path: String, a: Option<&Value>, b: Option<&Value>, changes: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                walk(child(&path, key), a.get(key), b.get(key), changes);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(child(&path, &i.to_string()), a.get(i), b.get(i), changes);
            }
        }
        (a, b) if a == b => {}
        (a, b) => changes.push(Change {
            path,
            expected: a.cloned(),
            candidate: b.cloned(),
        }),
    }
}

/// `path` and one more reference token, escaped as RFC 6901 says.
fn child(path: &str, token: &str) -> String {
    format!("{path}/{}", token.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changes_are_leaves_at_their_pointer() {
        let a = json!({"status": "Shipped", "items": [1, 2], "a/b": {"x": 1}, "gone": true});
        let b = json!({"status": "Delivered", "items": [1], "a/b": {"x": 1}, "new": null});
        let changes = serde_json::to_value(diff(&a, &b)).unwrap();
        assert_eq!(
            changes,
            json!([
                {"path": "/gone", "expected": true},
                {"path": "/items/1", "expected": 2},
                {"path": "/new", "candidate": null},
                {"path": "/status", "expected": "Shipped", "candidate": "Delivered"},
            ])
        );
        assert!(diff(&a, &a).is_empty());
        assert_eq!(diff(&json!(1), &json!("1"))[0].path, "");
    }
}
