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
pub const SUPPORTED: &[&str] = &["0.1.0", "0.2.0"];

/// A version of [`PACKAGE`] this host serves: which bindings a plugin is
/// called through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WitVersion {
    V0_1,
    V0_2,
}

impl WitVersion {
    /// The newest, which wirehook's examples and scaffolds target.
    pub const NEWEST: Self = Self::V0_2;

    /// The version as the package names it: `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => SUPPORTED[0],
            Self::V0_2 => SUPPORTED[1],
        }
    }

    fn parse(version: &str) -> Option<Self> {
        [Self::V0_1, Self::V0_2]
            .into_iter()
            .find(|known| known.as_str() == version)
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The version `component` targets, from every import and export of it
/// that belongs to [`PACKAGE`]. A component naming none of them is taken
/// for the newest: the world check that follows says what it lacks.
pub fn check(component: &Component, engine: &Engine) -> Result<WitVersion, Unsupported> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    target(names)
}

/// The version interface names such as `wirehook:plugin/host@0.1.0` name:
/// the first unsupported one is an error (`None` found for an unversioned
/// name), and of supported ones the newest wins, so that a component
/// mixing two fails the newest world's check rather than loading as the
/// older.
fn target<'a>(names: impl Iterator<Item = &'a str>) -> Result<WitVersion, Unsupported> {
    let versions: BTreeSet<Option<&str>> = names
        .filter_map(|name| name.strip_prefix(PACKAGE)?.strip_prefix('/'))
        .map(|rest| rest.split_once('@').map(|(_, version)| version))
        .collect();
    let mut newest = None;
    for version in versions {
        match version.and_then(WitVersion::parse) {
            Some(known) => newest = newest.max(Some(known)),
            None => {
                return Err(Unsupported {
                    found: version.map(str::to_owned),
                });
            }
        }
    }
    Ok(newest.unwrap_or(WitVersion::NEWEST))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_unsupported(names: &[&str]) -> Option<Option<String>> {
        target(names.iter().copied()).err().map(|e| e.found)
    }

    fn targeted(names: &[&str]) -> WitVersion {
        target(names.iter().copied()).unwrap()
    }

    #[test]
    fn accepts_the_supported_version_and_ignores_other_packages() {
        let names = [
            "wirehook:plugin/types@0.1.0",
            "wirehook:plugin/host@0.1.0",
            "wasi:cli/environment@0.2.3",
            "handle",
        ];
        assert_eq!(targeted(&names), WitVersion::V0_1);
        assert_eq!(first_unsupported(&[]), None);
    }

    #[test]
    fn picks_the_version_a_plugin_names() {
        let newer = ["wirehook:plugin/types@0.2.0", "wirehook:plugin/host@0.2.0"];
        assert_eq!(targeted(&newer), WitVersion::V0_2);
        // Nothing of ours: the newest world's check says what is missing.
        assert_eq!(
            targeted(&["wasi:cli/environment@0.2.3"]),
            WitVersion::NEWEST
        );
        // Both: the newest, whose world check refuses the mix.
        let mixed = ["wirehook:plugin/types@0.1.0", "wirehook:plugin/host@0.2.0"];
        assert_eq!(targeted(&mixed), WitVersion::V0_2);
        assert_eq!(WitVersion::V0_1.to_string(), "0.1.0");
        assert_eq!(WitVersion::NEWEST.as_str(), *SUPPORTED.last().unwrap());
    }

    #[test]
    fn names_a_newer_older_or_missing_version() {
        for version in ["0.3.0", "0.0.9", "0.1.1", "1.0.0"] {
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
            found: Some("0.3.0".into()),
        }
        .to_string();
        assert_eq!(
            message,
            "plugin targets wirehook:plugin@0.3.0; this wirehook supports 0.1.0, 0.2.0"
        );
    }
}
