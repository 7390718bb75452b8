//! The keys of a route whose provider is a plugin (`provider =
//! "plugin:NAME"`): the component's name, the URL the provider calls,
//! the named secrets it may have the host MAC with, its deadline, and
//! whether its instances serve one request each.

use std::collections::BTreeMap;

use figment::value::Dict;
use serde::Deserialize;

use super::{Problem, Resolver};
use crate::config::Isolation;
use crate::secret::{Secret, SecretSource};

/// A provider plugin's deadline when the route sets none: it runs on
/// every request's path, authenticated or not.
pub const DEFAULT_TIMEOUT_MS: u64 = 250;

/// `provider = "plugin:NAME"`, resolved.
#[derive(Debug, Clone)]
pub struct PluginProviderOptions {
    /// The component `NAME.wasm` in the plugins dir.
    pub name: String,
    /// The URL the provider calls, handed to the plugin as it is.
    pub public_url: Option<url::Url>,
    /// Keys the plugin names in its host calls, besides `secret`.
    pub secrets: BTreeMap<String, Secret>,
    pub timeout_ms: u64,
    /// `event` (the default): a fresh instance per request, so nothing
    /// one request leaves in the verifier's memory reaches another's
    /// answer; a verifier reads unauthenticated bytes. `pooled`: instances
    /// are kept between the route's requests, for speed.
    pub isolation: Isolation,
}

/// A provider plugin's keys, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginKeys {
    public_url: Option<String>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSource>,
    timeout_ms: Option<u64>,
    #[serde(default = "fresh_per_request")]
    isolation: Isolation,
}

fn fresh_per_request() -> Isolation {
    Isolation::Event
}

/// Whether `name` may name a component: the stem of a file in the
/// plugins dir, without path separators or dots.
fn is_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads `keys` as the options of provider plugin `name`, pushing every
/// problem under `at`.
pub(super) fn resolve(
    name: &str,
    keys: &Dict,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<PluginProviderOptions> {
    let id = format!("plugin:{name}");
    let mut resolver = Resolver {
        id: &id,
        at,
        problems,
        failed: false,
    };
    if !is_plugin_name(name) {
        resolver.problem(
            "provider",
            format!("`plugin:{name}` does not name a plugin (letters, digits, `-` and `_`)"),
        );
        return None;
    }
    let keys: PluginKeys = resolver.keys(keys)?;
    let public_url = match keys.public_url {
        Some(written) => resolver.public_url(Some(written)),
        None => None,
    };
    let secrets = keys
        .secrets
        .iter()
        .filter_map(|(key, source)| {
            let secret = resolver.secret(&format!("secrets.{key}"), source)?;
            Some((key.clone(), secret))
        })
        .collect();
    let timeout_ms = keys.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        resolver.problem("timeout_ms", "must be at least 1");
    }
    (!resolver.failed).then(|| PluginProviderOptions {
        name: name.to_owned(),
        public_url,
        secrets,
        timeout_ms,
        isolation: keys.isolation,
    })
}

#[cfg(test)]
mod tests {
    use super::super::ProviderOptions;
    use crate::config::Config;

    fn resolved(route: &str) -> Result<ProviderOptions, Vec<String>> {
        let toml = format!("[[route]]\nname = \"r\"\npath = \"/r\"\nsecret = \"s\"\n{route}\n");
        let config = Config::from_toml(&toml).expect("a config of the right shape");
        match config.resolve() {
            Ok(mut resolved) => Ok(resolved.routes.remove(0).provider),
            Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn a_plugin_provider_reads_its_keys() {
        let options = resolved(
            "provider = \"plugin:hubspot\"\npublic_url = \"https://h.example.com/hs\"\nsecrets = { old = \"previous\" }",
        )
        .unwrap();
        assert_eq!(options.name(), "plugin:hubspot");
        assert_eq!(options.id(), None);
        let ProviderOptions::Plugin(plugin) = options else {
            panic!("{options:?}")
        };
        assert_eq!(plugin.name, "hubspot");
        assert_eq!(plugin.timeout_ms, super::DEFAULT_TIMEOUT_MS);
        assert_eq!(plugin.isolation, crate::config::Isolation::Event);
        assert_eq!(plugin.secrets["old"].expose(), b"previous");
        assert_eq!(
            plugin.public_url.unwrap().as_str(),
            "https://h.example.com/hs"
        );
    }

    #[test]
    fn a_plugin_provider_refuses_what_it_cannot_use() {
        let problems = resolved("provider = \"plugin:../etc\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].provider: `plugin:../etc` does not name a plugin"),
            "{problems:?}"
        );
        let problems = resolved("provider = \"plugin:x\"\nprefix = \"v1=\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].prefix: unknown field")
                && problems[0].contains("the `plugin:x` provider does not read it"),
            "{problems:?}"
        );
        let problems = resolved("provider = \"plugin:x\"\nisolation = \"shared\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].isolation: unknown variant: found `shared`"),
            "{problems:?}"
        );
        let problems = resolved("provider = \"plugin:x\"\ntimeout_ms = 0").unwrap_err();
        assert_eq!(problems, ["route[0].timeout_ms: must be at least 1"]);
        let problems =
            resolved("provider = \"plugin:x\"\npublic_url = \"https://h/?token=hidden\"")
                .unwrap_err();
        assert!(
            problems[0].starts_with("route[0].public_url: is not")
                && !problems[0].contains("hidden"),
            "{problems:?}"
        );
    }
}
