//! Loading the component of a route whose provider is a plugin
//! (`provider = "plugin:NAME"`), bound to that route's keys and deadline.
//! It is loaded with its route, so that `wirehook check` refuses a missing
//! or wrong component like any other route problem. A component is
//! compiled once for every route that names it, and again on a reload only
//! when its bytes changed; each route binds it to its own keys and limits
//! as they are now.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::provider::PluginProviderOptions;
use crate::config::{Resolved, ResolvedRoute};
use crate::runtime::provider::{CompiledProvider, Keys, ProviderPlugin, ProviderSetup};
use crate::runtime::{Limits, Runtime};

use super::RouteTable;

/// The plugin `options` names, from the plugins dir, or the route
/// field's problem.
pub(super) fn load(
    route: &ResolvedRoute,
    options: &PluginProviderOptions,
    config: &Resolved,
    runtime: &Runtime,
    compiled: &mut Vec<Arc<CompiledProvider>>,
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
        limits: Limits::from(&config.plugins),
        timeout: Duration::from_millis(options.timeout_ms),
        isolation: options.isolation,
    };
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    if let Some(same) = compiled.iter().find(|c| c.is(&options.name, &sha256)) {
        return Ok(ProviderPlugin::bind(same.clone(), setup));
    }
    let component = CompiledProvider::compile(runtime.engine(), &options.name, &path, &bytes)
        .map_err(|reason| ("provider", reason))?;
    tracing::debug!(plugin = %options.name, route = %route.name, "provider plugin loaded");
    compiled.push(component.clone());
    Ok(ProviderPlugin::bind(component, setup))
}

/// The provider plugins `table` runs, each once: what a rebuild may keep.
pub(super) fn compiled_in(table: Option<&RouteTable>) -> Vec<Arc<CompiledProvider>> {
    let mut compiled: Vec<Arc<CompiledProvider>> = Vec::new();
    for plugin in table
        .into_iter()
        .flat_map(RouteTable::routes)
        .filter_map(|route| route.provider_plugin.as_ref())
    {
        if !compiled.iter().any(|c| Arc::ptr_eq(c, plugin.compiled())) {
            compiled.push(plugin.compiled().clone());
        }
    }
    compiled
}
