//! Which versions of the `wirehook:plugin` WIT package this host serves,
//! and the check at load that a plugin targets one of them.
//!
//! A released version is frozen (older ones live under `wit/deps/`) and
//! the host keeps serving every version listed here, so a plugin built
//! once keeps loading. A plugin for any other version is refused with a
//! message naming both versions, before the linker's less direct errors.

use std::collections::BTreeSet;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package plugins target.
pub const PACKAGE: &str = "wirehook:plugin";

/// Every version of [`PACKAGE`] this host serves, oldest first.
pub const SUPPORTED: &[&str] = &["0.1.0"];

/// A plugin's imports or exports name a version of [`PACKAGE`] that is not
/// [`SUPPORTED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The version the plugin names, or `None` for an unversioned package.
    pub found: Option<String>,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.found {
            Some(version) => write!(f, "plugin targets {PACKAGE}@{version}")?,
            None => write!(f, "plugin targets {PACKAGE} without a version")?,
        }
        write!(f, "; this wirehook supports {}", SUPPORTED.join(", "))
    }
}

/// Checks every import and export of `component` that belongs to
/// [`PACKAGE`]. A component naming none of them is not refused here: the
/// world check that follows says what it lacks.
pub fn check(component: &Component, engine: &Engine) -> Result<(), Unsupported> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    match unsupported(names) {
        Some(found) => Err(Unsupported { found }),
        None => Ok(()),
    }
}

/// The first unsupported version among interface names such as
/// `wirehook:plugin/host@0.1.0`; `Some(None)` for an unversioned one.
fn unsupported<'a>(names: impl Iterator<Item = &'a str>) -> Option<Option<String>> {
    let versions: BTreeSet<Option<&str>> = names
        .filter_map(|name| name.strip_prefix(PACKAGE)?.strip_prefix('/'))
        .map(|rest| rest.split_once('@').map(|(_, version)| version))
        .collect();
    versions
        .into_iter()
        .find(|version| !version.is_some_and(|v| SUPPORTED.contains(&v)))
        .map(|version| version.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_unsupported(names: &[&str]) -> Option<Option<String>> {
        unsupported(names.iter().copied())
    }

    #[test]
    fn accepts_the_supported_version_and_ignores_other_packages() {
        let names = [
            "wirehook:plugin/types@0.1.0",
            "wirehook:plugin/host@0.1.0",
            "wasi:cli/environment@0.2.3",
            "handle",
        ];
        assert_eq!(first_unsupported(&names), None);
        assert_eq!(first_unsupported(&[]), None);
    }

    #[test]
    fn names_a_newer_older_or_missing_version() {
        for version in ["0.2.0", "0.0.9", "0.1.1", "1.0.0"] {
            let host = format!("wirehook:plugin/host@{version}");
            assert_eq!(
                first_unsupported(&["wirehook:plugin/types@0.1.0", &host]),
                Some(Some(version.to_owned()))
            );
        }
        assert_eq!(first_unsupported(&["wirehook:plugin/host"]), Some(None));
        // Another package that merely starts the same way is not ours.
        assert_eq!(first_unsupported(&["wirehook:plugins/host@9.0.0"]), None);
    }

    #[test]
    fn message_names_both_versions() {
        let message = Unsupported {
            found: Some("0.2.0".into()),
        }
        .to_string();
        assert_eq!(
            message,
            "plugin targets wirehook:plugin@0.2.0; this wirehook supports 0.1.0"
        );
    }
}
