//! The route table: configuration, providers and plugins built and
//! validated together. `wirehook check`, start-up and reload all go
//! through [`RouteTable::build`], so they accept and refuse the same.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ipnet::IpNet;

use crate::config::provider::{MetaOptions, ProviderOptions};
use crate::config::{Mode, Problem, Resolved, ResolvedRoute, ServerConfig};
use crate::providers::{self, Decode, Provider, ProviderConfig, SlowChecks};
use crate::runtime::provider::{CompiledProvider, ProviderPlugin};
use crate::runtime::{Plugin, Runtime};
use plugins::LoadedPlugin;

mod plugin_provider;
mod plugins;

/// One `[[route]]`, ready to serve.
pub struct Route {
    /// Shared, so that metrics label a request without allocating.
    pub name: Arc<str>,
    pub path: String,
    /// The provider as the route names it (`github`, `plugin:hubspot`).
    pub provider_name: Arc<str>,
    pub provider: Arc<dyn Provider>,
    /// For `provider = "plugin:NAME"`: the plugin that proves and
    /// decodes the route's requests in place of `provider`.
    pub provider_plugin: Option<Arc<ProviderPlugin>>,
    pub decode: Decode,
    pub mode: Mode,
    pub allow_ips: Vec<IpNet>,
    pub retry: RetryPolicy,
    /// Run in order for each event.
    pub plugins: Vec<Arc<Plugin>>,
}

/// How a queue route retries a failed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
}

impl RetryPolicy {
    /// Delay after failed attempt `attempt` (from 1): exponential, capped,
    /// with `jitter` in [0, 1) spreading it over ±50% so that events failed
    /// together do not all come back together.
    pub fn delay_ms(&self, attempt: u32, jitter: f64) -> u64 {
        let doublings = attempt.saturating_sub(1).min(32);
        let base = self
            .backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms);
        let spread = 0.5 + jitter.clamp(0.0, 1.0);
        ((base as f64 * spread) as u64).min(self.backoff_max_ms)
    }
}

/// Everything the server needs to answer a request.
pub struct RouteTable {
    by_path: HashMap<String, Arc<Route>>,
    plugins: BTreeMap<String, LoadedPlugin>,
    /// `.wasm` files in the plugins dir that nothing uses: not loaded.
    unused: Vec<String>,
    /// The `[server]` settings requests are answered under.
    pub server: ServerConfig,
    /// `server.tls`, loaded: what new connections are served with.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl RouteTable {
    /// Builds every provider and loads every plugin the resolved `config`
    /// uses (see [`plugins`]). Returns every problem found, not just the
    /// first. Plugins unchanged since `previous` are reused, not reloaded.
    pub fn build(
        config: &Resolved,
        runtime: &Runtime,
        previous: Option<&RouteTable>,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let tls = match config.server.tls.as_ref().map(crate::tls::load) {
            Some(Ok(tls)) => Some(tls),
            Some(Err(problem)) => {
                problems.push(problem);
                None
            }
            None => None,
        };
        let plugins::Plugins { loaded, unused } =
            plugins::load(config, runtime, previous.map(|p| &p.plugins), &mut problems);
        if !unused.is_empty() {
            tracing::info!(plugins = ?unused, "present in the plugins dir but unused: not loaded");
        }
        let plugins: BTreeMap<String, Arc<Plugin>> = loaded
            .iter()
            .map(|(name, l)| (name.clone(), l.plugin.clone()))
            .collect();
        for name in config.plugin.keys() {
            if !plugins.contains_key(name) && !config.plugins.wasm_path(name).is_file() {
                tracing::warn!(plugin = %name, "[plugin.{name}] configures a plugin that is not in the plugins dir");
            }
        }
        let mut by_path = HashMap::new();
        let slow_checks = SlowChecks::new(config.server.max_slow_checks);
        let mut provider_plugins = plugin_provider::compiled_in(previous);
        for (i, route) in config.routes.iter().enumerate() {
            match build_route(
                route,
                &plugins,
                config,
                &slow_checks,
                runtime,
                &mut provider_plugins,
            ) {
                Ok(built) => {
                    by_path.insert(route.path.clone(), Arc::new(built));
                }
                Err(issue) => {
                    problems.push(Problem::new(format!("route[{i}].{}", issue.0), issue.1))
                }
            }
        }
        if problems.is_empty() {
            Ok(Self {
                by_path,
                plugins: loaded,
                unused,
                server: config.server.clone(),
                tls,
            })
        } else {
            Err(problems)
        }
    }

    pub fn route(&self, path: &str) -> Option<&Arc<Route>> {
        self.by_path.get(path)
    }

    pub fn route_named(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_path.values().find(|route| &*route.name == name)
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.by_path.values()
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values().map(|l| &l.plugin)
    }

    /// Each loaded plugin with the SHA-256 of its `.wasm` file, hex.
    pub fn plugin_files(&self) -> impl Iterator<Item = (&Arc<Plugin>, String)> {
        self.plugins.values().map(|l| (&l.plugin, l.sha256()))
    }

    /// The `.wasm` files in the plugins dir that nothing uses, by name.
    pub fn unused_plugins(&self) -> &[String] {
        &self.unused
    }
}

fn build_route(
    route: &ResolvedRoute,
    plugins: &BTreeMap<String, Arc<Plugin>>,
    config: &Resolved,
    slow_checks: &SlowChecks,
    runtime: &Runtime,
    provider_plugins: &mut Vec<Arc<CompiledProvider>>,
) -> Result<Route, (&'static str, String)> {
    if route.secret_is_literal {
        tracing::warn!(route = %route.name, "route.secret is a literal in the config file; prefer env: or file:");
    }
    if let ProviderOptions::Meta(MetaOptions { verify_token: None }) = &route.provider {
        tracing::warn!(route = %route.name, "route has no verify_token: the provider's subscription handshake will get 403");
    }
    let provider = providers::build(&ProviderConfig {
        options: &route.provider,
        secret: route.secret.clone(),
        slow_checks: slow_checks.clone(),
    })
    .map_err(|issue| (issue.field, issue.reason))?;
    let provider_name = route.provider.name();
    let decode =
        providers::decoder(&provider_name).expect("wirehook decodes every provider it builds");
    let provider_plugin = match &route.provider {
        ProviderOptions::Plugin(options) => Some(Arc::new(plugin_provider::load(
            route,
            options,
            config,
            runtime,
            provider_plugins,
        )?)),
        _ => None,
    };
    let plugins = route
        .plugins
        .iter()
        .map(|name| {
            plugins.get(name).cloned().ok_or_else(|| {
                let wasm = config.plugins.wasm_path(name);
                let reason = if wasm.is_file() {
                    format!("plugin `{name}` did not load (see its own problem)")
                } else {
                    format!("plugin `{name}` has no {}", wasm.display())
                };
                ("plugins", reason)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Route {
        name: Arc::from(route.name.as_str()),
        path: route.path.clone(),
        provider_name: Arc::from(provider_name.as_ref()),
        provider,
        provider_plugin,
        decode,
        mode: route.mode,
        allow_ips: route.allow_ips.clone(),
        retry: RetryPolicy {
            max_attempts: route.max_attempts,
            backoff_ms: route.backoff_ms,
            backoff_max_ms: route.backoff_max_ms,
        },
        plugins,
    })
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 8,
        backoff_ms: 1000,
        backoff_max_ms: 60_000,
    };

    #[test]
    fn backoff_doubles_then_caps() {
        let middle = |attempt| POLICY.delay_ms(attempt, 0.5);
        assert_eq!(middle(1), 1000);
        assert_eq!(middle(2), 2000);
        assert_eq!(middle(3), 4000);
        assert_eq!(middle(7), 60_000);
        assert_eq!(middle(100), 60_000);
    }

    #[test]
    fn jitter_spreads_half_either_way() {
        assert_eq!(POLICY.delay_ms(2, 0.0), 1000);
        assert_eq!(POLICY.delay_ms(2, 0.999), 2998);
    }
}
