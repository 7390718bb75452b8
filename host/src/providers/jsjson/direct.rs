//! `JSON.stringify(JSON.parse(text))` written straight from the text, with
//! no values built: each string, number and literal is written as it is
//! read. That is the whole round trip for any document whose objects
//! neither repeat a key nor have array-index keys, the two cases in which
//! `JSON.stringify` moves members; meeting one, it stops and the caller
//! parses into [`super::JsValue`]s instead. An unauthenticated OneRoute
//! body is run through this, so it allocates only its output (and, for an
//! object of many members, a set of their keys' hashes).

use std::collections::HashSet;
use std::hash::{BuildHasher as _, RandomState};

use super::{INDEXED_FROM, MAX_DEPTH, Parser, array_index, write_number};

/// Why the direct round trip stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// `JSON.parse` would throw.
    Invalid,
    /// An object repeats a key or has an array-index key: its members are
    /// written in another order than read.
    Reorder,
}

/// See the module doc.
pub(super) fn restringify(text: &str) -> Result<String, Stop> {
    let mut direct = Direct {
        parser: Parser { text, pos: 0 },
        out: String::with_capacity(text.len()),
        keys: Vec::new(),
        hashes: RandomState::new(),
    };
    direct.value(0)?;
    direct.parser.skip_whitespace();
    if direct.parser.pos != text.len() {
        return Err(Stop::Invalid);
    }
    Ok(direct.out)
}

struct Direct<'t> {
    parser: Parser<'t>,
    out: String,
    /// Where the keys of the objects being written are in `out`, the
    /// innermost object's last.
    keys: Vec<(usize, usize)>,
    /// Seeded per call: a sender cannot pick keys whose hashes collide.
    hashes: RandomState,
}

/// Whether `Number::toString` writes `number` (as the grammar allows it)
/// back as it is: an integer of at most 15 digits is a double exactly
/// and is written in full, and the grammar allows no leading zeros; only
/// `-0` is written otherwise (`0`).
fn is_exact_integer(number: &str) -> bool {
    let digits = number.strip_prefix('-').unwrap_or(number);
    digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !(digits == "0" && number.len() > 1)
}

/// `None` from the parser is invalid JSON.
fn valid<T>(read: Option<T>) -> Result<T, Stop> {
    read.ok_or(Stop::Invalid)
}

impl Direct<'_> {
    fn value(&mut self, depth: usize) -> Result<(), Stop> {
        self.parser.skip_whitespace();
        match valid(self.parser.peek())? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => valid(self.parser.string_into(&mut self.out)),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => {
                let number = valid(self.parser.number_text())?;
                if is_exact_integer(number) {
                    self.out.push_str(number);
                } else {
                    write_number(&mut self.out, valid(number.parse().ok())?);
                }
                Ok(())
            }
            _ => Err(Stop::Invalid),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), Stop> {
        let rest = &self.parser.text.as_bytes()[self.parser.pos..];
        if !rest.starts_with(word.as_bytes()) {
            return Err(Stop::Invalid);
        }
        self.parser.pos += word.len();
        self.out.push_str(word);
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Invalid);
        }
        valid(self.parser.eat(b'['))?;
        self.out.push('[');
        self.parser.skip_whitespace();
        if valid(self.parser.peek())? == b']' {
            self.parser.pos += 1;
            self.out.push(']');
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.parser.skip_whitespace();
            match valid(self.parser.bump())? {
                b',' => self.out.push(','),
                b']' => {
                    self.out.push(']');
                    return Ok(());
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Invalid);
        }
        valid(self.parser.eat(b'{'))?;
        self.out.push('{');
        self.parser.skip_whitespace();
        if valid(self.parser.peek())? == b'}' {
            self.parser.pos += 1;
            self.out.push('}');
            return Ok(());
        }
        let first_key = self.keys.len();
        // Hashes of the keys, once the object is too large to compare
        // each new key with every earlier one.
        let mut seen: Option<HashSet<u64>> = None;
        loop {
            self.parser.skip_whitespace();
            if valid(self.parser.peek())? != b'"' {
                return Err(Stop::Invalid);
            }
            let start = self.out.len();
            valid(self.parser.string_into(&mut self.out))?;
            let key = &self.out[start..];
            if array_index(key).is_some() {
                return Err(Stop::Reorder);
            }
            let earlier = &self.keys[first_key..];
            let repeated = if seen.is_none() && earlier.len() < INDEXED_FROM {
                earlier.iter().any(|&(a, b)| &self.out[a..b] == key)
            } else {
                let seen = seen.get_or_insert_with(|| {
                    earlier
                        .iter()
                        .map(|&(a, b)| self.hashes.hash_one(&self.out[a..b]))
                        .collect()
                });
                // A collision is taken for a repeat: the slow way then
                // finds out.
                !seen.insert(self.hashes.hash_one(key))
            };
            if repeated {
                return Err(Stop::Reorder);
            }
            self.keys.push((start, self.out.len()));
            self.parser.skip_whitespace();
            valid(self.parser.eat(b':'))?;
            self.out.push(':');
            self.value(depth)?;
            self.parser.skip_whitespace();
            match valid(self.parser.bump())? {
                b',' => self.out.push(','),
                b'}' => {
                    self.out.push('}');
                    self.keys.truncate(first_key);
                    return Ok(());
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, stringify};
    use super::*;

    /// What the values give, which the direct way must equal.
    fn through_values(text: &str) -> Option<String> {
        parse(text).map(|value| stringify(&value))
    }

    /// An object of `n` distinct members, then `last`.
    fn wide(n: usize, last: &str) -> String {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
        format!("{{{},{last}}}", members.join(","))
    }

    #[test]
    fn written_straight_it_equals_what_the_values_give() {
        for text in [
            r#" { "a" : [ 1.0, -0, 1e21, "x\/y", "\ud800", "\ud83d\ude00", true, false, null ] , "b" : {} } "#,
            r#"{"a":{"a":{"a":1},"b":2},"b":[{"a":1},{"a":2}]}"#,
            r#"[{"01":1,"-1":2,"1.5":3,"4294967295":4}]"#,
            r#""\u0041\u00e9\n""#,
            "[0,-0,-1,7,123456789012345,-123456789012345,1234567890123456,9007199254740993,1.0,-0.0,1e2,10]",
            &wide(40, "\"other\":1"),
            &wide(INDEXED_FROM - 1, "\"k0x\":1"),
        ] {
            assert_eq!(restringify(text).ok(), through_values(text), "{text}");
        }
    }

    #[test]
    fn repeated_and_array_index_keys_stop_it() {
        for text in [
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"b":1,"0":2}"#,
            r#"[{"x":{"4294967294":1}}]"#,
            &wide(INDEXED_FROM - 1, "\"k3\":1"),
            &wide(40, "\"k39\":1"),
            &wide(40, "\"k0\":1"),
        ] {
            assert_eq!(restringify(text), Err(Stop::Reorder), "{text}");
            assert!(through_values(text).is_some());
        }
        // A key repeated in another object is no repeat.
        let text = r#"{"a":{"a":1,"b":{"a":2}},"b":{"a":3}}"#;
        assert_eq!(restringify(text).ok(), through_values(text));
    }

    #[test]
    fn invalid_text_is_invalid() {
        for text in [
            "",
            "{",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "[1] x",
            "tru",
            "01",
        ] {
            assert_eq!(restringify(text), Err(Stop::Invalid), "{text:?}");
        }
        let deeper = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(restringify(&deeper), Err(Stop::Invalid));
    }
}
