//! What is wrong with a configuration, said by key and without quoting the
//! file: a config holds secrets (literal ones are allowed, with a warning),
//! and errors reach logs, terminals and CI output.

use std::fmt;
use std::path::PathBuf;

use figment::error::{Actual, Kind};

/// One thing wrong with a configuration, located by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `route[1].secret`, or a file for plugin problems.
    pub key: String,
    pub reason: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration was refused: every problem found, with the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

pub(super) fn figment_problem(e: figment::Error) -> Problem {
    figment_problem_under("", e)
}

/// The problem of `e`, met reading the value at key `at`.
pub(super) fn figment_problem_under(at: &str, e: figment::Error) -> Problem {
    // `route.0.mode` reads better as `route[0].mode`.
    let key = e.path.iter().fold(at.to_owned(), |mut key, part| {
        if part.parse::<usize>().is_ok() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
        key
    });
    let key = if key.is_empty() {
        "(file)".to_owned()
    } else {
        key
    };
    // The kind alone: figment's Display repeats the key and may quote the
    // offending value.
    let mut reason = reason(&e.kind);
    // A key set by a `WIREHOOK_…` variable is nowhere in the file.
    if let Some(metadata) = e
        .metadata
        .as_ref()
        .filter(|m| m.name.contains("environment"))
    {
        reason.push_str(&format!(" (from the {})", metadata.name));
    }
    Problem::new(key, reason)
}

/// The kind's own words, less any text taken from the file.
fn reason(kind: &Kind) -> String {
    match kind {
        Kind::Message(message) => without_source_lines(message),
        Kind::InvalidType(actual, expected) => {
            format!(
                "invalid type: found {}, expected {expected}",
                type_of(actual)
            )
        }
        Kind::InvalidValue(actual, expected) => {
            format!(
                "invalid value: found {}, expected {expected}",
                type_of(actual)
            )
        }
        other => other.to_string(),
    }
}

/// A TOML syntax error shows the offending line with a caret under it; the
/// position and the reason are enough, and the line may be `secret = "..."`.
fn without_source_lines(message: &str) -> String {
    let is_source_line = |line: &str| {
        let line = line.trim_start();
        let after_number = line.trim_start_matches(|c: char| c.is_ascii_digit());
        line.starts_with('|') || (after_number.len() < line.len() && after_number.starts_with(" |"))
    };
    message
        .lines()
        .filter(|line| !line.trim().is_empty() && !is_source_line(line))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(": ")
}

/// What was found, without the value itself.
fn type_of(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "nothing",
        Actual::Seq => "an array",
        Actual::Map => "a table",
        _ => "another type",
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn problems_of(toml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wirehook.toml");
        std::fs::write(&path, toml).unwrap();
        let error = Config::load(&path).unwrap_err();
        error.problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_syntax_error_gives_its_position_but_not_the_line() {
        let problems = problems_of(
            "[[route]]\nname = \"r\"\npath = \"/r\"\nprovider = \"goflow\"\nsecret = \"hunter2-literal\n",
        );
        let text = problems.join("\n");
        assert!(text.contains("line 5"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn text_is_read_as_a_file_is() {
        let toml = "[server]\nmax_body_bytes = \"hunter2-literal\"\n[[route]]\nname = 1\n";
        let from_text: Vec<String> = Config::from_toml(toml)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(from_text, problems_of(toml));
        assert!(Config::from_toml("[server]\nmax_body_bytes = 1\n").is_ok());
    }

    #[test]
    fn a_type_error_names_the_key_and_type_but_not_the_value() {
        let problems = problems_of(
            "[[route]]\nname = \"r\"\npath = \"/r\"\nprovider = \"goflow\"\nsecret = \"s\"\nplugins = \"hunter2-literal\"\n",
        );
        let text = problems.join("\n");
        assert!(text.contains("route[0].plugins"), "{text}");
        assert!(text.contains("found a string"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
