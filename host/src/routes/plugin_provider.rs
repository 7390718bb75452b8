//! Loading the component of a route whose provider is a plugin
//! (`provider = "plugin:NAME"`), bound to that route's keys and deadline.
//! It is loaded with its route (a reload loads it again, from the
//! compilation cache), so that `wirehook check` refuses a missing or
//! wrong component like any other route problem.

use std::time::Duration;

use crate::config::provider::PluginProviderOptions;
use crate::config::{Resolved, ResolvedRoute};
use crate::runtime::Runtime;
use crate::runtime::provider::{Keys, ProviderPlugin, ProviderSetup};

/// The plugin `options` names, from the plugins dir, or the route
/// field's problem.
pub(super) fn load(
    route: &ResolvedRoute,
    options: &PluginProviderOptions,
    config: &Resolved,
    runtime: &Runtime,
) -> Result<ProviderPlugin, (&'static str, String)> {
    let path = config.plugins.wasm_path(&options.name);
    let bytes = std::fs::read(&path).map_err(|e| {
        (
            "provider",
            format!(
                "provider plugin `{}`: cannot read {}: {e}",
                options.name,
                path.display()
            ),
        )
    })?;
    let setup = ProviderSetup {
        route: route.name.clone(),
        keys: Keys {
            secret: route.secret.clone(),
            named: options.secrets.clone(),
        },
        public_url: options.public_url.as_ref().map(ToString::to_string),
        memory_bytes: usize::try_from(config.plugins.memory_mb.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX),
        timeout: Duration::from_millis(options.timeout_ms),
    };
    let plugin = ProviderPlugin::load(runtime.engine(), &options.name, &path, &bytes, setup)
        .map_err(|reason| ("provider", reason))?;
    tracing::debug!(plugin = %options.name, route = %route.name, "provider plugin loaded");
    Ok(plugin)
}
