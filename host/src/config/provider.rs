//! A route's `provider` and the keys that provider reads: one options
//! struct per provider, so that the compiler, not a list of names, says
//! which keys a provider takes. A key its provider does not read is a
//! problem with its path, so that a typo'd or misplaced key does not pass
//! silently.
//!
//! The keys are read in two steps: [`Keys`] as written (secrets as
//! `env:`/`file:`/literal sources, header names as text), then
//! [`ProviderOptions`] resolved (secrets read once, header names parsed).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use axum::http::HeaderName;
use figment::value::{Dict, Tag, Value};
use serde::Deserialize;

use super::Problem;
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::secret::{Secret, SecretSource};

mod plugin;

pub use plugin::{DEFAULT_TIMEOUT_MS, PluginProviderOptions};

/// How a route's `provider` names a provider plugin: `plugin:NAME`.
pub const PLUGIN_PREFIX: &str = "plugin:";

/// The providers wirehook knows, by their `provider` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    Github,
    Goflow,
    Hmac,
    Messangi,
    Meta,
    Oneroute,
    Shopify,
    Slack,
    StandardWebhooks,
    Stripe,
    Telegram,
    Truora,
    Twilio,
    Vonage,
    Whatsable,
}

impl ProviderId {
    pub const ALL: [Self; 15] = [
        Self::Github,
        Self::Goflow,
        Self::Hmac,
        Self::Messangi,
        Self::Meta,
        Self::Oneroute,
        Self::Shopify,
        Self::Slack,
        Self::StandardWebhooks,
        Self::Stripe,
        Self::Telegram,
        Self::Truora,
        Self::Twilio,
        Self::Vonage,
        Self::Whatsable,
    ];

    /// The id as written in a route's `provider`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Goflow => "goflow",
            Self::Hmac => "hmac",
            Self::Messangi => "messangi",
            Self::Meta => "meta",
            Self::Oneroute => "oneroute",
            Self::Shopify => "shopify",
            Self::Slack => "slack",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Stripe => "stripe",
            Self::Telegram => "telegram",
            Self::Truora => "truora",
            Self::Twilio => "twilio",
            Self::Vonage => "vonage",
            Self::Whatsable => "whatsable",
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `provider` wirehook does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}` (known: {known}, or `plugin:NAME`)", known = ProviderId::ALL.map(ProviderId::as_str).join(", "))]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == id)
            .ok_or_else(|| UnknownProvider(id.to_owned()))
    }
}

/// A header name from config: parsed, and as written, which is how
/// `wirehook sign` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub written: String,
}

/// Shared-token providers (goflow, messangi, whatsable).
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    /// The header holding the secret; each provider has a default.
    pub header: Option<Header>,
    /// Further headers every request must carry, each with its value.
    pub headers: Vec<(HeaderName, Secret)>,
}

/// goflow: a shared token, and whether form bodies are accepted.
#[derive(Debug, Clone, Default)]
pub struct GoflowOptions {
    pub token: TokenOptions,
    /// Accept `application/x-www-form-urlencoded` bodies as well as JSON
    /// (a flow's webhook step configured to send a form); off, a form is
    /// 415 as for any JSON provider.
    pub form: bool,
}

/// The generic `hmac` provider.
#[derive(Debug, Clone, Default)]
pub struct HmacOptions {
    /// The header holding the signature; `X-Signature` when unset.
    pub header: Option<Header>,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    pub prefix: String,
}

/// Meta.
#[derive(Debug, Clone, Default)]
pub struct MetaOptions {
    /// The token of the GET `hub.challenge` handshake; without one every
    /// handshake is refused.
    pub verify_token: Option<Secret>,
}

/// Twilio.
#[derive(Debug, Clone, Default)]
pub struct TwilioOptions {
    /// The URL Twilio calls, as configured in Twilio's console, without
    /// its query: Twilio signs it, and behind a proxy it is not the URL
    /// wirehook sees. Required.
    pub public_url: Option<url::Url>,
}

/// A route's provider with its options, resolved.
#[derive(Debug, Clone)]
pub enum ProviderOptions {
    /// `plugin:NAME`: a component for the `provider` world.
    Plugin(PluginProviderOptions),
    Github,
    Goflow(GoflowOptions),
    Hmac(HmacOptions),
    Messangi(TokenOptions),
    Meta(MetaOptions),
    Oneroute,
    Shopify,
    Slack,
    StandardWebhooks,
    Stripe,
    Telegram,
    Truora,
    Twilio(TwilioOptions),
    Vonage,
    Whatsable(TokenOptions),
}

impl ProviderOptions {
    /// The built-in provider; `None` for a provider plugin.
    pub fn id(&self) -> Option<ProviderId> {
        Some(match self {
            Self::Plugin(_) => return None,
            Self::Github => ProviderId::Github,
            Self::Goflow(_) => ProviderId::Goflow,
            Self::Hmac(_) => ProviderId::Hmac,
            Self::Messangi(_) => ProviderId::Messangi,
            Self::Meta(_) => ProviderId::Meta,
            Self::Oneroute => ProviderId::Oneroute,
            Self::Shopify => ProviderId::Shopify,
            Self::Slack => ProviderId::Slack,
            Self::StandardWebhooks => ProviderId::StandardWebhooks,
            Self::Stripe => ProviderId::Stripe,
            Self::Telegram => ProviderId::Telegram,
            Self::Truora => ProviderId::Truora,
            Self::Twilio(_) => ProviderId::Twilio,
            Self::Vonage => ProviderId::Vonage,
            Self::Whatsable(_) => ProviderId::Whatsable,
        })
    }

    /// The provider as a route writes it: `github`, `plugin:hubspot`.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        match (self, self.id()) {
            (_, Some(id)) => id.as_str().into(),
            (Self::Plugin(plugin), None) => format!("plugin:{}", plugin.name).into(),
            (_, None) => unreachable!("every provider but a plugin has an id"),
        }
    }

    /// Reads `keys` as the options of the route's `provider`, written as
    /// a built-in id or `plugin:NAME`.
    pub fn resolve_written(
        written: &str,
        keys: &Dict,
        at: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Self> {
        if let Some(name) = written.strip_prefix(PLUGIN_PREFIX) {
            return plugin::resolve(name, keys, at, problems).map(Self::Plugin);
        }
        match written.parse::<ProviderId>() {
            Ok(id) => Self::resolve(id, keys, at, problems),
            Err(unknown) => {
                let key = if at.is_empty() {
                    "provider".to_owned()
                } else {
                    format!("{at}.provider")
                };
                problems.push(Problem::new(key, unknown.to_string()));
                None
            }
        }
    }

    /// Provider `id` with every option at its default.
    pub fn bare(id: ProviderId) -> Self {
        match id {
            ProviderId::Github => Self::Github,
            ProviderId::Goflow => Self::Goflow(GoflowOptions::default()),
            ProviderId::Hmac => Self::Hmac(HmacOptions::default()),
            ProviderId::Messangi => Self::Messangi(TokenOptions::default()),
            ProviderId::Meta => Self::Meta(MetaOptions::default()),
            ProviderId::Oneroute => Self::Oneroute,
            ProviderId::Shopify => Self::Shopify,
            ProviderId::Slack => Self::Slack,
            ProviderId::StandardWebhooks => Self::StandardWebhooks,
            ProviderId::Stripe => Self::Stripe,
            ProviderId::Telegram => Self::Telegram,
            ProviderId::Truora => Self::Truora,
            ProviderId::Twilio => Self::Twilio(TwilioOptions::default()),
            ProviderId::Vonage => Self::Vonage,
            ProviderId::Whatsable => Self::Whatsable(TokenOptions::default()),
        }
    }

    /// Reads `keys` (a route's keys beyond the ones every route has) as
    /// provider `id`'s options, secrets resolved. Every problem is pushed
    /// with its key under `at` (e.g. `route[2]`; empty for none).
    pub fn resolve(
        id: ProviderId,
        keys: &Dict,
        at: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Self> {
        let mut resolver = Resolver {
            id: id.as_str(),
            at,
            problems,
            failed: false,
        };
        let options = match id {
            ProviderId::Goflow => {
                let keys: GoflowKeys = resolver.keys(keys)?;
                Self::Goflow(GoflowOptions {
                    token: resolver.token_of(TokenKeys {
                        header: keys.header,
                        headers: keys.headers,
                    }),
                    form: keys.form,
                })
            }
            ProviderId::Messangi => Self::Messangi(resolver.token(keys)?),
            ProviderId::Whatsable => Self::Whatsable(resolver.token(keys)?),
            ProviderId::Hmac => {
                let keys: HmacKeys = resolver.keys(keys)?;
                Self::Hmac(HmacOptions {
                    header: resolver.header("header", keys.header),
                    algorithm: keys.algorithm.unwrap_or_default(),
                    encoding: keys.encoding.unwrap_or_default(),
                    prefix: keys.prefix.unwrap_or_default(),
                })
            }
            ProviderId::Meta => {
                let keys: MetaKeys = resolver.keys(keys)?;
                Self::Meta(MetaOptions {
                    verify_token: keys
                        .verify_token
                        .and_then(|token| resolver.secret("verify_token", &token)),
                })
            }
            ProviderId::Twilio => {
                let keys: TwilioKeys = resolver.keys(keys)?;
                Self::Twilio(TwilioOptions {
                    public_url: resolver.public_url(keys.public_url),
                })
            }
            ProviderId::Github
            | ProviderId::Oneroute
            | ProviderId::Shopify
            | ProviderId::Slack
            | ProviderId::StandardWebhooks
            | ProviderId::Stripe
            | ProviderId::Telegram
            | ProviderId::Truora
            | ProviderId::Vonage => {
                let NoKeys {} = resolver.keys(keys)?;
                Self::bare(id)
            }
        };
        (!resolver.failed).then_some(options)
    }
}

/// The keys of a shared-token provider, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenKeys {
    header: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, SecretSource>,
}

/// goflow's keys, as written: a shared token's, and `form`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GoflowKeys {
    header: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, SecretSource>,
    #[serde(default)]
    form: bool,
}

/// The keys of the `hmac` provider, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HmacKeys {
    header: Option<String>,
    algorithm: Option<HmacAlgorithm>,
    encoding: Option<SignatureEncoding>,
    prefix: Option<String>,
}

/// Meta's keys, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaKeys {
    verify_token: Option<SecretSource>,
}

/// Twilio's keys, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioKeys {
    public_url: Option<String>,
}

/// A provider that reads no key beyond the ones every route has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// One route's provider keys being resolved, with the problems found.
struct Resolver<'a> {
    /// The provider as written, for messages.
    id: &'a str,
    at: &'a str,
    problems: &'a mut Vec<Problem>,
    failed: bool,
}

impl Resolver<'_> {
    /// `key` under `self.at`.
    fn key(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn problem(&mut self, key: &str, reason: impl Into<String>) {
        self.failed = true;
        let key = self.key(key);
        self.problems.push(Problem::new(key, reason));
    }

    /// The keys as provider `self.id` reads them, or a problem per wrong key.
    fn keys<K: for<'de> Deserialize<'de>>(&mut self, keys: &Dict) -> Option<K> {
        let value = Value::Dict(Tag::Default, keys.clone());
        match K::deserialize(&value) {
            Ok(keys) => Some(keys),
            Err(errors) => {
                for error in errors {
                    let problem = match &error.kind {
                        figment::error::Kind::UnknownField(key, reads) => {
                            Problem::new(self.key(key), self.not_read(key, reads))
                        }
                        _ => super::problem::figment_problem_under(self.at, error),
                    };
                    self.problems.push(problem);
                }
                self.failed = true;
                None
            }
        }
    }

    fn not_read(&self, key: &str, reads: &[&str]) -> String {
        let reads = if reads.is_empty() {
            "reads no further keys".to_owned()
        } else {
            let keys: Vec<String> = reads.iter().map(|key| format!("`{key}`")).collect();
            format!("reads {}", keys.join(", "))
        };
        format!(
            "unknown field: found `{key}`; the `{}` provider does not read it (it {reads})",
            self.id
        )
    }

    fn token(&mut self, keys: &Dict) -> Option<TokenOptions> {
        let keys: TokenKeys = self.keys(keys)?;
        Some(self.token_of(keys))
    }

    fn token_of(&mut self, keys: TokenKeys) -> TokenOptions {
        let header = self.header("header", keys.header);
        let headers = keys
            .headers
            .iter()
            .filter_map(|(name, source)| {
                let value = self.secret(&format!("headers.{name}"), source);
                let name = self.header("headers", Some(name.clone()));
                Some((name?.name, value?))
            })
            .collect();
        TokenOptions { header, headers }
    }

    fn header(&mut self, key: &str, written: Option<String>) -> Option<Header> {
        let written = written?;
        match HeaderName::try_from(written.as_str()) {
            Ok(name) => Some(Header { name, written }),
            Err(_) => {
                self.problem(key, format!("`{written}` is not a valid header name"));
                None
            }
        }
    }

    /// An absolute `http(s)` URL without query or fragment; required.
    fn public_url(&mut self, written: Option<String>) -> Option<url::Url> {
        let Some(written) = written else {
            self.problem(
                "public_url",
                format!("the `{}` provider needs the URL it calls", self.id),
            );
            return None;
        };
        match url::Url::parse(&written) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                Some(url)
            }
            // Never the value: a URL may carry credentials.
            _ => {
                self.problem(
                    "public_url",
                    "is not an absolute http(s) URL without query or fragment",
                );
                None
            }
        }
    }

    fn secret(&mut self, key: &str, source: &SecretSource) -> Option<Secret> {
        source
            .resolve()
            .map_err(|reason| self.problem(key, reason.to_string()))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn resolved(route: &str) -> Result<ProviderOptions, Vec<String>> {
        let toml = format!("[[route]]\nname = \"r\"\npath = \"/r\"\nsecret = \"s\"\n{route}\n");
        let config = Config::from_toml(&toml).expect("a config of the right shape");
        match config.resolve() {
            Ok(mut resolved) => Ok(resolved.routes.remove(0).provider),
            Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
        }
    }

    /// A key the provider does not read is a mistake worth reporting: a
    /// `prefix` on a meta route, say, would otherwise do nothing silently.
    #[test]
    fn keys_the_provider_does_not_read_are_problems_at_their_path() {
        let problems = resolved("provider = \"meta\"\nprefix = \"sha256=\"").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("route[0].prefix: unknown field: found `prefix`")
                && problems[0].contains("the `meta` provider does not read it")
                && problems[0].contains("`verify_token`"),
            "{problems:?}"
        );
        let problems = resolved("provider = \"oneroute\"\nheader = \"X-Signature\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].header: ")
                && problems[0].contains("reads no further keys"),
            "{problems:?}"
        );
        let options = resolved(
            "provider = \"hmac\"\nheader = \"X-Hub-Signature-256\"\nprefix = \"sha256=\"\nalgorithm = \"sha512\"",
        )
        .unwrap();
        let ProviderOptions::Hmac(hmac) = options else {
            panic!("{options:?}")
        };
        assert_eq!(hmac.header.unwrap().name, "x-hub-signature-256");
        assert_eq!(hmac.algorithm, HmacAlgorithm::Sha512);
        assert_eq!(hmac.prefix, "sha256=");
    }

    #[test]
    fn a_wrong_option_value_is_a_problem_at_its_path() {
        let problems = resolved("provider = \"hmac\"\nalgorithm = \"md5\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].algorithm: "),
            "{problems:?}"
        );
        let problems =
            resolved("provider = \"goflow\"\nheader = \"not a header\"\nheaders = { X-A = \"\", \"bad name\" = \"v\" }")
                .unwrap_err();
        for expected in [
            "route[0].header: `not a header` is not a valid header name",
            "route[0].headers.X-A: is empty",
            "route[0].headers: `bad name` is not a valid header name",
        ] {
            assert!(
                problems.iter().any(|p| p == expected),
                "{expected}: {problems:?}"
            );
        }
    }

    /// goflow alone reads `form`, a boolean, off by default.
    #[test]
    fn goflow_reads_form_and_only_goflow_does() {
        let ProviderOptions::Goflow(options) = resolved("provider = \"goflow\"").unwrap() else {
            panic!("not goflow")
        };
        assert!(!options.form);
        let ProviderOptions::Goflow(options) =
            resolved("provider = \"goflow\"\nform = true\nheader = \"X-Token\"").unwrap()
        else {
            panic!("not goflow")
        };
        assert!(options.form);
        assert_eq!(options.token.header.unwrap().name, "x-token");
        let problems = resolved("provider = \"goflow\"\nform = \"yes\"").unwrap_err();
        assert!(problems[0].starts_with("route[0].form: "), "{problems:?}");
        let problems = resolved("provider = \"messangi\"\nform = true").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].form: unknown field: found `form`"),
            "{problems:?}"
        );
    }

    #[test]
    fn twilio_needs_a_plain_public_url() {
        let problems = resolved("provider = \"twilio\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].public_url: the `twilio` provider needs"),
            "{problems:?}"
        );
        for url in [
            "hooks.example.com/twilio",
            "ftp://hooks.example.com/t",
            "https://hooks.example.com/t?token=hidden",
        ] {
            let problems =
                resolved(&format!("provider = \"twilio\"\npublic_url = \"{url}\"")).unwrap_err();
            assert!(
                problems[0].starts_with("route[0].public_url: is not")
                    && !problems[0].contains("hidden"),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn unknown_providers_list_the_known_ones() {
        let problems = resolved("provider = \"carrier-pigeon\"").unwrap_err();
        assert!(
            problems[0].starts_with("route[0].provider: unknown provider `carrier-pigeon`")
                && problems[0].contains("standard-webhooks"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_provider_resolves_with_no_keys() {
        for id in ProviderId::ALL {
            // Twilio signs the URL it calls, which wirehook cannot know.
            let keys = if id == ProviderId::Twilio {
                "\npublic_url = \"https://hooks.example.com/twilio\""
            } else {
                ""
            };
            let options = resolved(&format!("provider = \"{id}\"{keys}")).unwrap();
            assert_eq!(options.id(), Some(id));
            assert_eq!(id.as_str().parse::<ProviderId>(), Ok(id));
        }
    }
}
