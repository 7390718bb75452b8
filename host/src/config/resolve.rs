//! [`Config::resolve`]: the one pass that checks what parsing cannot see
//! and reads every secret, origin, header name and provider option once.
//! Routes, the runtime and a reload are built from its [`Resolved`]
//! output alone, so a `file:` setting is read once per load and cannot
//! change (or vanish) between a check and its use.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::provider::ProviderOptions;
use super::{
    Config, DeliveryConfig, Isolation, LogConfig, Mode, PluginsConfig, Problem, RESERVED_PATHS,
    ReloadConfig, ServerConfig, StorageConfig,
};
use crate::origin::Origin;
use crate::secret::Secret;

/// A configuration with every problem checked and every secret read.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    /// `storage.url`, read: the PostgreSQL URL (with its password) when
    /// `storage.backend` is `postgres`.
    pub database_url: Option<Secret>,
    pub plugins: PluginsConfig,
    pub delivery: DeliveryConfig,
    pub reload: ReloadConfig,
    pub log: LogConfig,
    pub admin: super::ResolvedAdmin,
    /// In file order.
    pub routes: Vec<ResolvedRoute>,
    /// `[plugin.NAME]`, by name.
    pub plugin: BTreeMap<String, ResolvedPlugin>,
}

/// One `[[route]]`, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedRoute {
    pub name: String,
    pub path: String,
    pub provider: ProviderOptions,
    pub secret: Option<Secret>,
    /// The secret is written in the config file itself (warned about).
    pub secret_is_literal: bool,
    pub plugins: Vec<String>,
    pub mode: Mode,
    pub allow_ips: Vec<IpNet>,
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
}

/// One `[plugin.NAME]`, resolved: what the plugin is granted.
#[derive(Debug, Clone, Default)]
pub struct ResolvedPlugin {
    pub allow_http: Vec<Origin>,
    pub settings: BTreeMap<String, Secret>,
    pub kv: bool,
    pub isolation: Isolation,
    pub pool_size: Option<usize>,
    pub memory_budget_mb: Option<u64>,
}

impl Config {
    /// Everything wrong with this configuration that parsing cannot see,
    /// short of loading plugins (see `RouteTable::build`), all at once; or
    /// the configuration with every secret read and every origin, header
    /// name and provider option parsed.
    pub fn resolve(self) -> Result<Resolved, Vec<Problem>> {
        let mut problems = Vec::new();
        if self.plugins.memory_mb == 0 {
            problems.push(Problem::new("plugins.memory_mb", "must be at least 1"));
        }
        if self.plugins.pool_size == 0 {
            problems.push(Problem::new("plugins.pool_size", "must be at least 1"));
        }
        if self.plugins.memory_budget_mb == 0 {
            problems.push(Problem::new(
                "plugins.memory_budget_mb",
                "must be at least 1",
            ));
        }
        if self.plugins.instance_idle_secs == 0 {
            problems.push(Problem::new(
                "plugins.instance_idle_secs",
                "must be at least 1",
            ));
        }
        if self.plugins.timeout_ms == 0 {
            problems.push(Problem::new("plugins.timeout_ms", "must be at least 1"));
        }
        if self.delivery.workers == 0 {
            problems.push(Problem::new("delivery.workers", "must be at least 1"));
        }
        if self.delivery.housekeeping_secs == 0 {
            problems.push(Problem::new(
                "delivery.housekeeping_secs",
                "must be at least 1",
            ));
        }
        if let Some(level) = &self.log.level
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(level)
        {
            problems.push(Problem::new("log.level", e.to_string()));
        }
        if self.delivery.lease_secs == 0 {
            problems.push(Problem::new("delivery.lease_secs", "must be at least 1"));
        }
        self.server.problems(&mut problems);
        let database_url = self.storage.resolve_into(&mut problems);
        let admin = self.admin.resolve(&mut problems);
        self.telemetry.problems(&mut problems);
        let plugin = self
            .plugin
            .iter()
            .map(|(name, plugin)| (name.clone(), resolve_plugin(name, plugin, &mut problems)))
            .collect();
        let routes = self.resolve_routes(&mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Resolved {
            server: self.server,
            storage: self.storage,
            database_url,
            plugins: self.plugins,
            delivery: self.delivery,
            reload: self.reload,
            log: self.log,
            admin,
            routes,
            plugin,
        })
    }

    fn resolve_routes(&self, problems: &mut Vec<Problem>) -> Vec<ResolvedRoute> {
        let mut names = BTreeMap::new();
        let mut paths = BTreeMap::new();
        let mut resolved = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("route[{i}]");
            let key = |field: &str| format!("{at}.{field}");
            if route.name.is_empty() {
                problems.push(Problem::new(key("name"), "must not be empty"));
            } else if let Some(first) = names.insert(route.name.as_str(), i) {
                problems.push(Problem::new(
                    key("name"),
                    format!("`{}` is also the name of route[{first}]", route.name),
                ));
            }
            if !route.path.starts_with('/') {
                problems.push(Problem::new(key("path"), "must start with `/`"));
            } else if RESERVED_PATHS.contains(&route.path.as_str()) {
                problems.push(Problem::new(
                    key("path"),
                    format!(
                        "`{}` is reserved for wirehook's own health checks ({})",
                        route.path,
                        RESERVED_PATHS.join(", ")
                    ),
                ));
            } else if let Some(first) = paths.insert(route.path.as_str(), i) {
                problems.push(Problem::new(
                    key("path"),
                    format!("`{}` is also the path of route[{first}]", route.path),
                ));
            }
            if route.max_attempts == 0 {
                problems.push(Problem::new(key("max_attempts"), "must be at least 1"));
            }
            if route.backoff_ms > route.backoff_max_ms {
                problems.push(Problem::new(
                    key("backoff_ms"),
                    "must not exceed backoff_max_ms",
                ));
            }
            let secret = route
                .secret
                .as_ref()
                .and_then(|source| match source.resolve() {
                    Ok(secret) => Some(secret),
                    Err(reason) => {
                        problems.push(Problem::new(key("secret"), reason.to_string()));
                        None
                    }
                });
            let provider =
                ProviderOptions::resolve_written(&route.provider, &route.keys, &at, problems);
            let Some(provider) = provider else { continue };
            resolved.push(ResolvedRoute {
                name: route.name.clone(),
                path: route.path.clone(),
                provider,
                secret,
                secret_is_literal: route.secret.as_ref().is_some_and(|s| s.is_literal()),
                plugins: route.plugins.clone(),
                mode: route.mode,
                allow_ips: route.allow_ips.clone(),
                max_attempts: route.max_attempts,
                backoff_ms: route.backoff_ms,
                backoff_max_ms: route.backoff_max_ms,
            });
        }
        resolved
    }
}

fn resolve_plugin(
    name: &str,
    plugin: &super::PluginConfig,
    problems: &mut Vec<Problem>,
) -> ResolvedPlugin {
    if plugin.pool_size == Some(0) {
        problems.push(Problem::new(
            format!("plugin.{name}.pool_size"),
            "must be at least 1",
        ));
    }
    if plugin.memory_budget_mb == Some(0) {
        problems.push(Problem::new(
            format!("plugin.{name}.memory_budget_mb"),
            "must be at least 1",
        ));
    }
    let mut settings = BTreeMap::new();
    for (key, source) in &plugin.settings {
        match source.resolve() {
            Ok(value) => {
                settings.insert(key.clone(), value);
            }
            Err(reason) => problems.push(Problem::new(
                format!("plugin.{name}.settings.{key}"),
                reason.to_string(),
            )),
        }
    }
    let mut allow_http = Vec::new();
    for (i, entry) in plugin.allow_http.iter().enumerate() {
        match Origin::parse(entry) {
            Ok(origin) => allow_http.push(origin),
            Err(reason) => problems.push(Problem::new(
                format!("plugin.{name}.allow_http[{i}]"),
                reason.to_string(),
            )),
        }
    }
    ResolvedPlugin {
        allow_http,
        settings,
        kv: plugin.kv,
        isolation: plugin.isolation,
        pool_size: plugin.pool_size,
        memory_budget_mb: plugin.memory_budget_mb,
    }
}
