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
//! - numbers are IEEE doubles printed by `Number::toString`: the shortest
//!   digits that round-trip, `1.0` → `1`, `-0` → `0`, `1e21` → `1e+21`,
//!   out-of-range → `null`;
//! - object keys keep their order, except that array-index keys
//!   (`"0"`…`"4294967294"`) come first in ascending order, and a repeated
//!   key keeps its first position with its last value.
//!
//! That is why this is its own small value type and parser rather than
//! `serde_json::Value`, which sorts keys and keeps integers exact.
//! The grammar is `JSON.parse`'s (RFC 8259), nesting capped at
//! [`MAX_DEPTH`] like serde_json's, so hostile input cannot exhaust the stack.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Deepest nesting parsed; deeper documents are refused.
pub const MAX_DEPTH: usize = 128;

/// A value as JavaScript holds it after `JSON.parse`.
#[derive(Debug, Clone, PartialEq)]
pub enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    /// UTF-16 code units, possibly unpaired surrogates.
    String(Vec<u16>),
    Array(Vec<JsValue>),
    /// Entries in creation order; repeated keys already merged.
    Object(Vec<(Vec<u16>, JsValue)>),
}

/// What a JavaScript receiver signs: `JSON.stringify(JSON.parse(body))`,
/// the body decoded as UTF-8 with replacement characters (as Node's body
/// parsers do) and a leading byte-order mark dropped. `None` when
/// `JSON.parse` would throw (or nesting exceeds [`MAX_DEPTH`]).
pub fn restringify(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    parse(text).map(|value| stringify(&value))
}

/// `JSON.parse(text)`; `None` where it would throw.
pub fn parse(text: &str) -> Option<JsValue> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    (parser.pos == parser.chars.len()).then_some(value)
}

/// `JSON.stringify(value)`.
pub fn stringify(value: &JsValue) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> Option<()> {
        (self.bump()? == c).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, value: JsValue) -> Option<JsValue> {
        for c in word.chars() {
            self.eat(c)?;
        }
        Some(value)
    }

    fn value(&mut self, depth: usize) -> Option<JsValue> {
        self.skip_whitespace();
        match self.peek()? {
            '{' => self.object(depth + 1),
            '[' => self.array(depth + 1),
            '"' => self.string().map(JsValue::String),
            't' => self.literal("true", JsValue::Bool(true)),
            'f' => self.literal("false", JsValue::Bool(false)),
            'n' => self.literal("null", JsValue::Null),
            '-' | '0'..='9' => self.number(),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<JsValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat('[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek()? == ']' {
            self.pos += 1;
            return Some(JsValue::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.bump()? {
                ',' => continue,
                ']' => return Some(JsValue::Array(items)),
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<JsValue> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat('{')?;
        let mut entries: Vec<(Vec<u16>, JsValue)> = Vec::new();
        let mut index: HashMap<Vec<u16>, usize> = HashMap::new();
        self.skip_whitespace();
        if self.peek()? == '}' {
            self.pos += 1;
            return Some(JsValue::Object(entries));
        }
        loop {
            self.skip_whitespace();
            if self.peek()? != '"' {
                return None;
            }
            let key = self.string()?;
            self.skip_whitespace();
            self.eat(':')?;
            let value = self.value(depth)?;
            // A repeated key overwrites the value but keeps the property's
            // original place, as assignment to an existing property does.
            match index.get(&key) {
                Some(&at) => entries[at].1 = value,
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push((key, value));
                }
            }
            self.skip_whitespace();
            match self.bump()? {
                ',' => continue,
                '}' => return Some(JsValue::Object(entries)),
                _ => return None,
            }
        }
    }

    fn string(&mut self) -> Option<Vec<u16>> {
        self.eat('"')?;
        let mut units = Vec::new();
        loop {
            match self.bump()? {
                '"' => return Some(units),
                '\\' => {
                    let unit = match self.bump()? {
                        '"' => '"' as u16,
                        '\\' => '\\' as u16,
                        '/' => '/' as u16,
                        'b' => 0x08,
                        'f' => 0x0c,
                        'n' => 0x0a,
                        'r' => 0x0d,
                        't' => 0x09,
                        'u' => {
                            let mut unit = 0u16;
                            for _ in 0..4 {
                                unit = unit << 4 | self.bump()?.to_digit(16)? as u16;
                            }
                            unit
                        }
                        _ => return None,
                    };
                    units.push(unit);
                }
                c if (c as u32) < 0x20 => return None,
                c => {
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(c.encode_utf16(&mut buf));
                }
            }
        }
    }

    fn number(&mut self) -> Option<JsValue> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        match self.bump()? {
            '0' => {}
            '1'..='9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some('.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        // Rust's parse rounds correctly, like ECMAScript's; overflow gives
        // ±infinity, as in JavaScript.
        text.parse::<f64>().ok().map(JsValue::Number)
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }
}

fn write_value(out: &mut String, value: &JsValue) {
    match value {
        JsValue::Null => out.push_str("null"),
        JsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsValue::Number(n) => write_number(out, *n),
        JsValue::String(units) => write_string(out, units),
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
            // Array-index keys first, ascending; then the rest in order.
            let mut indexed: Vec<(u32, &(Vec<u16>, JsValue))> = Vec::new();
            let mut named = Vec::new();
            for entry in entries {
                match array_index(&entry.0) {
                    Some(i) => indexed.push((i, entry)),
                    None => named.push(entry),
                }
            }
            indexed.sort_by_key(|(i, _)| *i);
            out.push('{');
            let ordered = indexed.into_iter().map(|(_, e)| e).chain(named);
            for (i, (key, value)) in ordered.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, value);
            }
            out.push('}');
        }
    }
}

/// The value of an array-index key: the canonical decimal form of an
/// integer below 2³² − 1.
fn array_index(key: &[u16]) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == u16::from(b'0')) {
        return None;
    }
    let mut value: u64 = 0;
    for &unit in key {
        let digit = char::from_u32(u32::from(unit))?.to_digit(10)?;
        value = value * 10 + u64::from(digit);
    }
    u32::try_from(value).ok().filter(|v| *v != u32::MAX)
}

/// ECMAScript `Number::toString(x)` for the finite doubles; non-finite
/// ones are `null` in JSON.
pub fn write_number(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    if x == 0.0 {
        out.push('0'); // -0 too
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // ECMAScript's step 5: the fewest digits k that round-trip, and among
    // those the closest to x, ties to even. Rust's `{:e}` gives the fewest
    // digits but not always the closest (98189330125073.625 prints as
    // …073.63 where JavaScript has …073.62), so the correctly rounded
    // k-digit form is preferred whenever it round-trips too.
    let shortest = format!("{:e}", x.abs());
    let k = shortest
        .split('e')
        .next()
        .map_or(0, |m| m.bytes().filter(u8::is_ascii_digit).count());
    let rounded = format!("{:.*e}", k.saturating_sub(1), x.abs());
    let sci = if rounded.parse::<f64>() == Ok(x.abs()) {
        rounded
    } else {
        shortest
    };
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // n: the position of the decimal point relative to the digits.
    let n = exponent
        .parse::<i64>()
        .expect("{:e} exponent is an integer")
        + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { '+' } else { '-' }, e.abs());
    }
}

/// ECMAScript `QuoteJSONString`.
fn write_string(out: &mut String, units: &[u16]) {
    out.push('"');
    for unit in char::decode_utf16(units.iter().copied()) {
        match unit {
            Ok('"') => out.push_str("\\\""),
            Ok('\\') => out.push_str("\\\\"),
            Ok('\u{8}') => out.push_str("\\b"),
            Ok('\u{c}') => out.push_str("\\f"),
            Ok('\n') => out.push_str("\\n"),
            Ok('\r') => out.push_str("\\r"),
            Ok('\t') => out.push_str("\\t"),
            Ok(c) if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            Ok(c) => out.push(c),
            Err(lone) => {
                let _ = write!(out, "\\u{:04x}", lone.unpaired_surrogate());
            }
        }
    }
    out.push('"');
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
