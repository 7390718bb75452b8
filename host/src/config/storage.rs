//! `[storage]`: where events, the delivery log and KV live, and where
//! compiled plugins are cached.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;
use crate::secret::{Secret, SecretSource};

/// Which store backs the daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One file under `path`: one daemon per store.
    #[default]
    Sqlite,
    /// A PostgreSQL database at `url`, shared by several daemons.
    Postgres,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// The PostgreSQL connection URL (`postgres://…` or key=value form),
    /// in the secret forms: it carries a password. Never logged.
    pub url: Option<SecretSource>,
    /// Connections to PostgreSQL this daemon keeps at most.
    pub pool_size: usize,
    /// PEM certificates trusted for TLS to PostgreSQL in place of
    /// Mozilla's roots (see `sslmode` in the URL).
    pub ca_file: Option<PathBuf>,
    /// Directory of the embedded store and of the plugin compilation cache.
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            url: None,
            pool_size: 16,
            ca_file: None,
            path: PathBuf::from("data"),
        }
    }
}

impl StorageConfig {
    /// Checks `[storage]` and reads the PostgreSQL URL from where `url`
    /// says, once: the store is opened with what this returns. Problems
    /// name where it looked, never the value.
    pub fn resolve(&self) -> Result<Option<Secret>, Vec<Problem>> {
        let mut problems = Vec::new();
        let url = self.resolve_into(&mut problems);
        if problems.is_empty() {
            Ok(url)
        } else {
            Err(problems)
        }
    }

    pub(super) fn resolve_into(&self, problems: &mut Vec<Problem>) -> Option<Secret> {
        if self.pool_size == 0 {
            problems.push(Problem::new("storage.pool_size", "must be at least 1"));
        }
        if let (Backend::Sqlite, Some(_)) = (self.backend, &self.ca_file) {
            problems.push(Problem::new(
                "storage.ca_file",
                "is read only with backend = \"postgres\"",
            ));
        }
        match (self.backend, &self.url) {
            (Backend::Postgres, None) => {
                problems.push(Problem::new(
                    "storage.url",
                    "is required with backend = \"postgres\"",
                ));
                None
            }
            (Backend::Postgres, Some(url)) => {
                let checked = url.resolve().map_err(|e| e.to_string()).and_then(|secret| {
                    let text = std::str::from_utf8(secret.expose())
                        .map_err(|_| "is not UTF-8".to_owned())?;
                    crate::store::postgres::tls::parse_url(text)?;
                    Ok(secret)
                });
                checked
                    .map_err(|reason| problems.push(Problem::new("storage.url", reason)))
                    .ok()
            }
            (Backend::Sqlite, Some(_)) => {
                problems.push(Problem::new(
                    "storage.url",
                    "is read only with backend = \"postgres\"",
                ));
                None
            }
            (Backend::Sqlite, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(toml: &str) -> Vec<String> {
        use figment::providers::Format;
        let storage: StorageConfig = figment::Figment::from(figment::providers::Toml::string(toml))
            .extract()
            .unwrap();
        match storage.resolve() {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn postgres_needs_a_url_that_parses_and_is_never_quoted() {
        assert!(problems("").is_empty(), "sqlite needs nothing");
        let missing = problems("backend = \"postgres\"");
        assert!(missing[0].starts_with("storage.url"), "{missing:?}");
        let garbled =
            problems("backend = \"postgres\"\nurl = \"postgres://u:hunter2@h:notaport/db\"");
        assert_eq!(garbled.len(), 1, "{garbled:?}");
        assert!(!garbled[0].contains("hunter2"), "{garbled:?}");
        let fine = problems("backend = \"postgres\"\nurl = \"host=/run/postgresql dbname=w\"");
        assert!(fine.is_empty(), "{fine:?}");
        let stray = problems("url = \"host=/run/postgresql\"");
        assert!(stray[0].starts_with("storage.url"), "{stray:?}");
    }
}
