//! JavaScript's `JSON.stringify(JSON.parse(text))`, reproduced exactly.
//!
//! OneRoute signs `JSON.stringify(req.body)`: whatever bytes went over the
//! wire, the signature covers the text a JavaScript receiver would get by
//! parsing and re-serialising them. To check such a signature when the
//! body was re-formatted on the way, wirehook must produce that same text:
//!
//! - strings are UTF-16 (`\ud800` survives as a lone surrogate) and are
//!   written back with only `"`, `\` and control characters escaped:
//!   `\b \f \n \r \t`, other controls as `\u00xx`, lone surrogates as
//!   `\udxxx` (lower-case hex, as ES2019's well-formed `JSON.stringify`);
//! - numbers are IEEE doubles printed by `Number::toString` (the `ryu-js`
//!   crate): the shortest digits that round-trip, `1.0` → `1`, `-0` → `0`,
//!   `1e21` → `1e+21`, out-of-range → `null`;
//! - object keys keep their order, except that array-index keys
//!   (`"0"`…`"4294967294"`) come first in ascending order, and a repeated
//!   key keeps its first position with its last value.
//!
//! That is why this is its own small value type and parser rather than
//! `serde_json::Value`, which sorts keys and keeps integers exact.
//! The grammar is `JSON.parse`'s (RFC 8259), nesting capped at
//! [`MAX_DEPTH`] like serde_json's, so hostile input cannot exhaust the stack.
//!
//! A string is held as the text `JSON.stringify` writes for it: written
//! back as it is, and equal to another exactly when their UTF-16 code
//! units are, so repeated keys are found by comparing it. Runs without
//! escapes are copied whole. [`restringify`] writes straight from the
//! text without building values ([`direct`]) unless an object repeats a
//! key or has array-index keys, so the usual round trip is one linear
//! pass and one copy of the body; an unauthenticated body is run through
//! it (see the OneRoute provider), so it must stay cheap.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

mod direct;

/// Deepest nesting parsed; deeper documents are refused.
pub const MAX_DEPTH: usize = 128;

/// Objects with more members than this find repeated keys through an
/// index; smaller ones by looking through what they hold, which is faster.
const INDEXED_FROM: usize = 16;

/// A value as JavaScript holds it after `JSON.parse`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    /// The string as `JSON.stringify` writes it, quotes included (a lone
    /// surrogate as its `\udxxx` escape).
    String(String),
    Array(Vec<JsValue>),
    /// Entries in creation order, keys as [`JsValue::String`] holds them;
    /// repeated keys already merged.
    Object(Vec<(String, JsValue)>),
}

/// What a JavaScript receiver signs: `JSON.stringify(JSON.parse(body))`,
/// the body decoded as UTF-8 with replacement characters (as Node's body
/// parsers do) and a leading byte-order mark dropped. `None` when
/// `JSON.parse` would throw (or nesting exceeds [`MAX_DEPTH`]).
pub fn restringify(body: &[u8]) -> Option<String> {
    // Checking is faster than mending: mend only what needs it.
    let text = match std::str::from_utf8(body) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match direct::restringify(text) {
        Ok(out) => Some(out),
        Err(direct::Stop::Invalid) => None,
        Err(direct::Stop::Reorder) => {
            let value = parse(text)?;
            let mut out = String::with_capacity(text.len());
            write_value(&mut out, &value);
            Some(out)
        }
    }
}

/// `JSON.parse(text)`; `None` where it would throw.
pub fn parse(text: &str) -> Option<JsValue> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    (parser.pos == text.len()).then_some(value)
}

/// `JSON.stringify(value)`.
pub fn stringify(value: &JsValue) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

struct Parser<'t> {
    text: &'t str,
    /// A byte offset; always at a character boundary, since the parser
    /// only ever steps over ASCII bytes or whole runs between them.
    pos: usize,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.bump()? == b).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: JsValue) -> Option<JsValue> {
        let rest = self.text.as_bytes().get(self.pos..)?;
        rest.starts_with(word.as_bytes()).then(|| {
            self.pos += word.len();
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<JsValue> {
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(JsValue::String),
            b't' => self.literal("true", JsValue::Bool(true)),
            b'f' => self.literal("false", JsValue::Bool(false)),
            b'n' => self.literal("null", JsValue::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<JsValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(JsValue::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.bump()? {
                b',' => continue,
                b']' => return Some(JsValue::Array(items)),
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<JsValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let mut entries: Vec<(String, JsValue)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        self.skip_whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(JsValue::Object(entries));
        }
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.eat(b':')?;
            let value = self.value(depth)?;
            // A repeated key overwrites the value but keeps the property's
            // original place, as assignment to an existing property does.
            let existing = if entries.len() < INDEXED_FROM {
                entries.iter().position(|(k, _)| *k == key)
            } else {
                if index.is_empty() {
                    index.extend(entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)));
                }
                index.get(&key).copied()
            };
            match existing {
                Some(at) => entries[at].1 = value,
                None => {
                    if !index.is_empty() {
                        index.insert(key.clone(), entries.len());
                    }
                    entries.push((key, value));
                }
            }
            self.skip_whitespace();
            match self.bump()? {
                b',' => continue,
                b'}' => return Some(JsValue::Object(entries)),
                _ => return None,
            }
        }
    }

    /// A string, as `JSON.stringify` writes it back.
    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        self.string_into(&mut out)?;
        Some(out)
    }

    /// A string, written to `out` as `JSON.stringify` writes it back.
    fn string_into(&mut self, out: &mut String) -> Option<()> {
        self.eat(b'"')?;
        out.push('"');
        loop {
            let start = self.pos;
            let run = self.text.as_bytes()[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            self.pos += run;
            // Written back unchanged: nothing in it is escaped on output.
            out.push_str(&self.text[start..self.pos]);
            match self.bump()? {
                b'"' => {
                    out.push('"');
                    return Some(());
                }
                b'\\' => self.escape(out)?,
                _ => return None,
            }
        }
    }

    /// The escape after a backslash, written as `JSON.stringify` would.
    fn escape(&mut self, out: &mut String) -> Option<()> {
        let unit = match self.bump()? {
            b'"' => 0x22,
            b'\\' => 0x5c,
            b'/' => 0x2f,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => 0x0a,
            b'r' => 0x0d,
            b't' => 0x09,
            b'u' => self.hex4()?,
            _ => return None,
        };
        let c = match unit {
            0xd800..=0xdbff => {
                let resume = self.pos;
                let low = self.text.as_bytes()[self.pos..]
                    .starts_with(b"\\u")
                    .then(|| {
                        self.pos += 2;
                        self.hex4()
                    })
                    .flatten()
                    .filter(|low| (0xdc00..=0xdfff).contains(low));
                match low {
                    Some(low) => {
                        let code = 0x10000
                            + ((u32::from(unit) - 0xd800) << 10)
                            + (u32::from(low) - 0xdc00);
                        char::from_u32(code).expect("a surrogate pair is a character")
                    }
                    None => {
                        // Lone: what follows is read again on its own.
                        self.pos = resume;
                        let _ = write!(out, "\\u{unit:04x}");
                        return Some(());
                    }
                }
            }
            0xdc00..=0xdfff => {
                let _ = write!(out, "\\u{unit:04x}");
                return Some(());
            }
            _ => char::from_u32(u32::from(unit)).expect("not a surrogate"),
        };
        write_char(out, c);
        Some(())
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.text.as_bytes().get(self.pos..self.pos + 4)?;
        let mut unit = 0u16;
        for &d in digits {
            unit = unit << 4 | char::from(d).to_digit(16)? as u16;
        }
        self.pos += 4;
        Some(unit)
    }

    fn number(&mut self) -> Option<JsValue> {
        self.double().map(JsValue::Number)
    }

    fn double(&mut self) -> Option<f64> {
        // Rust's parse rounds correctly, like ECMAScript's; overflow gives
        // ±infinity, as in JavaScript.
        self.number_text()?.parse::<f64>().ok()
    }

    /// A number's text, as `JSON.parse`'s grammar allows it.
    fn number_text(&mut self) -> Option<&'t str> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.bump()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Some(&self.text[start..self.pos])
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }
}

/// One character of a string, escaped as ECMAScript's `QuoteJSONString`.
fn write_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

fn write_value(out: &mut String, value: &JsValue) {
    match value {
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) => write_number(out, *n),
        JsValue::String(quoted) => out.push_str(quoted),
        JsValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        JsValue::Object(entries) => {
            out.push('{');
            let mut first = true;
            let mut member = |out: &mut String, key: &str, value: &JsValue| {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                out.push_str(key);
                out.push(':');
                write_value(out, value);
            };
            // Array-index keys first, ascending; then the rest in order.
            let mut indexed: Vec<(u32, usize)> = entries
                .iter()
                .enumerate()
                .filter_map(|(at, (key, _))| Some((array_index(key)?, at)))
                .collect();
            if indexed.is_empty() {
                for (key, value) in entries {
                    member(out, key, value);
                }
            } else {
                indexed.sort_unstable();
                for &(_, at) in &indexed {
                    member(out, &entries[at].0, &entries[at].1);
                }
                for (key, value) in entries.iter().filter(|(key, _)| array_index(key).is_none()) {
                    member(out, key, value);
                }
            }
            out.push('}');
        }
    }
}

/// The value of an array-index key (held quoted): the canonical decimal
/// form of an integer below 2³² − 1.
fn array_index(quoted: &str) -> Option<u32> {
    let key = quoted.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == b'0') {
        return None;
    }
    if !key.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value: u64 = key
        .iter()
        .fold(0, |value, d| value * 10 + u64::from(d - b'0'));
    u32::try_from(value).ok().filter(|v| *v != u32::MAX)
}

/// ECMAScript `Number::toString(x)` for the finite doubles; non-finite
/// ones are `null` in JSON.
pub fn write_number(out: &mut String, x: f64) {
    if x.is_finite() {
        out.push_str(ryu_js::Buffer::new().format_finite(x));
    } else {
        out.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> Option<String> {
        restringify(text.as_bytes())
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        // Expected values from node's JSON.stringify.
        let cases = [
            ("1.0", "1"),
            ("1e21", "1e+21"),
            ("1E21", "1e+21"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("0.1", "0.1"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("123e-20", "1.23e-18"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("1e400", "null"),
            ("-1e400", "null"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("9007199254740993", "9007199254740992"),
            ("-1e-7", "-1e-7"),
            ("12.5e1", "125"),
            // A tie between two shortest forms: the even one.
            ("98189330125073.625", "98189330125073.62"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                round(&format!("[{input}]")).unwrap(),
                format!("[{expected}]"),
                "{input}"
            );
        }
    }

    #[test]
    fn keys_keep_order_with_array_indices_first() {
        let text = r#"{"b":1,"4294967295":2,"4294967294":3,"9007199254740991":4,"1":5,"01":6,"-1":7,"1.5":8,"0":9, "a":1, "b":2, "a":3}"#;
        assert_eq!(
            round(text).unwrap(),
            r#"{"0":9,"1":5,"4294967294":3,"b":2,"4294967295":2,"9007199254740991":4,"01":6,"-1":7,"1.5":8,"a":3}"#
        );
    }

    #[test]
    fn strings_escape_as_javascript_does() {
        let text = r#"["\ud800", "\udc00\ud800", "\ud83d\ude00", "\u0000\u001f\u007f\u2028", "é\/\"\\\b\f\n\r\t"]"#;
        assert_eq!(
            round(text).unwrap(),
            "[\"\\ud800\",\"\\udc00\\ud800\",\"😀\",\"\\u0000\\u001f\u{7f}\u{2028}\",\"é/\\\"\\\\\\b\\f\\n\\r\\t\"]"
        );
    }

    #[test]
    fn invalid_json_is_refused_as_json_parse_would() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "+1",
            ".5",
            "1.",
            "1e",
            "NaN",
            "'a'",
            "{a:1}",
            "\"\t\"",
            "[1] x",
            "\"\\x\"",
            "\"\\u12\"",
            "tru",
            "nul",
        ] {
            assert_eq!(round(text), None, "{text:?}");
        }
        assert_eq!(round(" \t\r\n[ 1 , {} ] \n").unwrap(), "[1,{}]");
        assert_eq!(round("\u{feff}{}").unwrap(), "{}");
    }

    #[test]
    fn nesting_is_capped_without_overflowing_the_stack() {
        let deep = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(round(&deep).is_some());
        let deeper = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(round(&deeper), None);
        assert_eq!(round(&"{\"a\":".repeat(100_000)), None);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(restringify(b"[\"a\xffb\"]").unwrap(), "[\"a\u{fffd}b\"]");
    }
}
