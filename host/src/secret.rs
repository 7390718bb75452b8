//! Secrets: where they come from (`env:VAR`, `file:PATH`, or a literal in
//! the config file) and a value type that never prints itself.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A reference to a secret as written in config.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SecretSource {
    /// `env:VAR`: the value of an environment variable.
    Env(String),
    /// `file:PATH`: the contents of a file (systemd credentials), without
    /// the trailing newline editors add. `${CREDENTIALS_DIRECTORY}` in the
    /// path is expanded.
    File(PathBuf),
    /// Anything else is the secret itself; allowed, but warned about.
    Literal(Secret),
}

impl From<String> for SecretSource {
    fn from(s: String) -> Self {
        if let Some(var) = s.strip_prefix("env:") {
            Self::Env(var.to_owned())
        } else if let Some(path) = s.strip_prefix("file:") {
            Self::File(PathBuf::from(path))
        } else {
            Self::Literal(Secret::new(s.into_bytes()))
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(var) => write!(f, "env:{var}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Literal(_) => f.write_str("(literal)"),
        }
    }
}

/// Why a secret could not be read. It says where wirehook looked, never
/// what it found.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    EnvUnset(String),
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A literal secret that is blank.
    #[error("is empty")]
    EmptyLiteral,
    /// An `env:` or `file:` secret that is blank; `from` is its source as
    /// written.
    #[error("{from} is empty")]
    Empty { from: String },
}

impl SecretSource {
    /// Reads the secret.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let secret = match self {
            Self::Env(var) => std::env::var_os(var)
                .ok_or_else(|| SecretError::EnvUnset(var.clone()))?
                .into_encoded_bytes(),
            Self::File(path) => {
                let path = expand_credentials_dir(path);
                let mut bytes = std::fs::read(&path)
                    .map_err(|error| SecretError::Unreadable { path, error })?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
            Self::Literal(secret) => {
                if blank(secret.expose()) {
                    return Err(SecretError::EmptyLiteral);
                }
                return Ok(secret.clone());
            }
        };
        if blank(&secret) {
            return Err(SecretError::Empty {
                from: format!("{self:?}"),
            });
        }
        Ok(Secret::new(secret))
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Self::Literal(_))
    }
}

/// An empty secret, or one of only whitespace (a file holding a newline),
/// would let anyone through: a shared token would match an absent one, an
/// HMAC would be keyed with nothing. It is refused wherever it comes from.
fn blank(bytes: &[u8]) -> bool {
    bytes.trim_ascii().is_empty()
}

pub(crate) fn expand_credentials_dir(path: &std::path::Path) -> PathBuf {
    const VAR: &str = "${CREDENTIALS_DIRECTORY}";
    let text = path.to_string_lossy();
    match (text.contains(VAR), std::env::var("CREDENTIALS_DIRECTORY")) {
        (true, Ok(dir)) => PathBuf::from(text.replace(VAR, &dir)),
        _ => path.to_owned(),
    }
}

/// Secret bytes. `Debug` prints a placeholder so a secret cannot reach a
/// log line by accident; comparison is constant-time.
#[derive(Clone)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time equality with `candidate` (the length may leak).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.ct_eq(candidate).into()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_prefix() {
        assert_eq!(
            SecretSource::from("env:X".to_owned()),
            SecretSource::Env("X".into())
        );
        assert_eq!(
            SecretSource::from("file:/run/s".to_owned()),
            SecretSource::File("/run/s".into())
        );
        assert!(SecretSource::from("hunter2".to_owned()).is_literal());
    }

    #[test]
    fn debug_never_shows_the_value() {
        let literal = SecretSource::from("hunter2".to_owned());
        assert!(!format!("{literal:?}").contains("hunter2"));
        let secret = literal.resolve().unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn file_secret_drops_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "s3cret\n").unwrap();
        let secret = SecretSource::File(path).resolve().unwrap();
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cret\n"));
    }

    #[test]
    fn empty_secrets_are_refused_wherever_they_come_from() {
        let dir = tempfile::tempdir().unwrap();
        for (i, contents) in ["", "\n", " \r\n", "\t \n\n"].into_iter().enumerate() {
            let path = dir.path().join(format!("s{i}"));
            std::fs::write(&path, contents).unwrap();
            let err = SecretSource::File(path.clone())
                .resolve()
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("empty"), "{err}");
        }
        for literal in ["", " ", "\n"] {
            let err = SecretSource::from(literal.to_owned())
                .resolve()
                .unwrap_err();
            assert!(matches!(err, SecretError::EmptyLiteral), "{err}");
            assert_eq!(err.to_string(), "is empty");
        }
        // Whitespace around a real secret is not blankness.
        assert!(SecretSource::from(" s ".to_owned()).resolve().is_ok());
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = SecretSource::Env("WIREHOOK_TEST_UNSET_VAR".into())
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains("WIREHOOK_TEST_UNSET_VAR"), "{err}");
    }
}
