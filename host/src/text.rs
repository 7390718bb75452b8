//! Text from outside (request bodies, plugins, the store) made safe to
//! show: control characters escaped, so that a value can neither break a
//! log line in two nor drive the terminal that shows it, and long values
//! cut at a character boundary with a marker saying how much went.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` must not reach a terminal or a line-based log as it is:
/// C0 controls (newline, ESC, BEL...), DEL, C1 controls (a lone CSI is
/// U+009B), the Unicode line and paragraph separators, and the bidi
/// controls that reorder what a reader sees.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}'
                | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Writes `text` to `out` with every [unsafe](is_unsafe) character
/// written as Rust writes it in a string literal: `\n`, `\t`, `\r`, else
/// `\u{1b}`.
pub fn write_escaped(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(is_unsafe) {
        out.write_str(&rest[..at])?;
        let c = rest[at..].chars().next().expect("found at a char boundary");
        match c {
            '\n' | '\r' | '\t' => write!(out, "{}", c.escape_debug())?,
            _ => write!(out, "{}", c.escape_unicode())?,
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.write_str(rest)
}

/// `text` with every [unsafe](is_unsafe) character escaped; borrowed when
/// there is none.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    write_escaped(&mut out, text).expect("writing to a String cannot fail");
    Cow::Owned(out)
}

/// JSON text (as serde_json writes it) with the unsafe characters JSON
/// leaves as they are (DEL, C1 controls, line separators, bidi controls)
/// written as `\uXXXX` escapes. Such characters only occur inside JSON
/// strings, where the escape means the same character, so the document is
/// unchanged; the C0 controls outside strings are the document's own
/// whitespace, and inside strings serde_json has escaped them already.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    let needs = |c: char| c == '\u{7f}' || (!c.is_ascii() && is_unsafe(c));
    if !json.contains(needs) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs(c) {
            // Every such character is in the Basic Multilingual Plane.
            write!(out, "\\u{:04x}", u32::from(c)).expect("writing to a String cannot fail");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` bytes (at a character boundary) followed
/// by a marker saying how many bytes were cut; unchanged when it fits.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… [{} more bytes cut]",
        &text[..end],
        text.len() - end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_and_keeps_the_rest() {
        assert_eq!(
            escape("id\x1b]0;owned\x07\x1b[2J\r\nnext\tcol\u{9b}31m\u{7f}"),
            "id\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\r\\nnext\\tcol\\u{9b}31m\\u{7f}"
        );
        assert_eq!(
            escape("abc\u{202e}cba\u{2066}\u{2028}"),
            "abc\\u{202e}cba\\u{2066}\\u{2028}"
        );
        assert!(matches!(escape("plain ünïcode ✓ \\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_raw_controls() {
        let value = serde_json::json!({ "id": "a\u{9b}2J\u{7f}\u{202e}b\n\x1b", "k": "ok" });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let escaped = escape_json(&text);
        assert!(
            !escaped.contains(['\u{9b}', '\u{7f}', '\u{202e}', '\x1b']),
            "{escaped}"
        );
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, value);
        assert!(matches!(escape_json("{\n  \"a\": 1\n}"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncates_at_a_char_boundary_with_a_marker() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 4), "abcd… [2 more bytes cut]");
        // "é" is two bytes: a cut inside it moves back before it.
        assert_eq!(truncate("abcé", 4), "abc… [2 more bytes cut]");
    }
}
