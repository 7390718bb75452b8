//! Which plugins a config uses, and loading them: only the `.wasm` files a
//! route or a `[plugin.NAME]` table names are compiled (in parallel, one
//! thread per core); the others are listed as present but unused, so that
//! a stray or broken file in the plugins dir costs nothing and fails
//! nothing. A plugin is compiled again only when its content (a hash of
//! its bytes) or its config changed: size and modification time say
//! nothing about content after `cp -p`, `rsync -t` or a reproducible build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::Digest;

use crate::config::{Problem, Resolved, ResolvedPlugin};
use crate::runtime::{LoadError, Plugin, Runtime};

/// A loaded plugin and what it was loaded from, so that a reload reuses
/// it when neither changed.
pub(super) struct LoadedPlugin {
    pub(super) plugin: Arc<Plugin>,
    fingerprint: Fingerprint,
}

impl LoadedPlugin {
    /// The SHA-256 of the `.wasm` file it was loaded from, hex.
    pub(super) fn sha256(&self) -> String {
        hex::encode(self.fingerprint.content)
    }
}

/// A digest of the `.wasm` file's bytes, and the plugin's config and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    content: [u8; 32],
    config: String,
}

impl Fingerprint {
    fn of(bytes: &[u8], config: &Resolved, plugin: &ResolvedPlugin) -> Self {
        let ResolvedPlugin {
            allow_http,
            settings,
            kv,
            isolation,
            pool_size,
            memory_budget_mb,
        } = plugin;
        // Setting values count (a changed env or file value reloads), but
        // only as digests.
        let settings: Vec<_> = settings
            .iter()
            .map(|(key, value)| (key, hash(value.expose())))
            .collect();
        Self {
            content: sha2::Sha256::digest(bytes).into(),
            config: format!(
                "{allow_http:?} {settings:?} {kv} {isolation:?} {pool_size:?} {memory_budget_mb:?} {:?}",
                config.plugins
            ),
        }
    }
}

/// A digest, so that secret setting values are compared, not kept.
fn hash(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The plugins dir as a config sees it.
pub(super) struct Plugins {
    pub(super) loaded: BTreeMap<String, LoadedPlugin>,
    /// `.wasm` files no route and no `[plugin.NAME]` table names (as a
    /// plugin or a provider): not loaded here.
    pub(super) unused: Vec<String>,
}

/// One plugin to load: read, then compiled unless `previous` has it.
struct Wanted {
    name: String,
    path: PathBuf,
}

/// Loads the `*.wasm` files in the plugins dir that `config` uses, each
/// named after its file stem. Plugins unchanged since `previous` are
/// reused, not compiled again.
pub(super) fn load(
    config: &Resolved,
    runtime: &Runtime,
    previous: Option<&BTreeMap<String, LoadedPlugin>>,
    problems: &mut Vec<Problem>,
) -> Plugins {
    let dir = &config.plugins.dir;
    let mut plugins = Plugins {
        loaded: BTreeMap::new(),
        unused: Vec::new(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::new(
                "plugins.dir",
                format!("cannot read {}: {e}", dir.display()),
            ));
            return plugins;
        }
    };
    let used: BTreeSet<&str> = config
        .routes
        .iter()
        .flat_map(|route| route.plugins.iter().map(String::as_str))
        .chain(config.plugin.keys().map(String::as_str))
        .collect();
    // Provider plugins load with their routes (`super::plugin_provider`).
    let providers: BTreeSet<&str> = config
        .routes
        .iter()
        .filter_map(|route| match &route.provider {
            crate::config::provider::ProviderOptions::Plugin(plugin) => Some(plugin.name.as_str()),
            _ => None,
        })
        .collect();
    let mut wanted = Vec::new();
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    paths.sort();
    for path in paths {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if used.contains(name) {
            wanted.push(Wanted {
                name: name.to_owned(),
                path,
            });
        } else if !providers.contains(name) {
            plugins.unused.push(name.to_owned());
        }
    }
    let results = in_parallel(&wanted, |want| {
        load_one(
            want,
            config,
            runtime,
            previous.and_then(|p| p.get(&want.name)),
        )
    });
    for (want, result) in wanted.iter().zip(results) {
        match result {
            Ok(loaded) => {
                plugins.loaded.insert(want.name.clone(), loaded);
            }
            Err(e) => problems.push(Problem::new(
                format!("plugin `{}`", want.name),
                e.to_string(),
            )),
        }
    }
    plugins
}

fn load_one(
    want: &Wanted,
    config: &Resolved,
    runtime: &Runtime,
    previous: Option<&LoadedPlugin>,
) -> Result<LoadedPlugin, LoadError> {
    let bytes = std::fs::read(&want.path).map_err(|source| LoadError::Read {
        path: want.path.display().to_string(),
        source,
    })?;
    let plugin_config = config.plugin.get(&want.name).cloned().unwrap_or_default();
    let fingerprint = Fingerprint::of(&bytes, config, &plugin_config);
    if let Some(old) = previous.filter(|old| old.fingerprint == fingerprint) {
        return Ok(LoadedPlugin {
            plugin: old.plugin.clone(),
            fingerprint,
        });
    }
    let plugin = runtime.load(
        &want.name,
        &want.path,
        &bytes,
        &plugin_config,
        &config.plugins,
    )?;
    tracing::debug!(
        plugin = %want.name,
        path = %want.path.display(),
        precompiled = plugin.is_precompiled(),
        "plugin loaded"
    );
    Ok(LoadedPlugin {
        plugin: Arc::new(plugin),
        fingerprint,
    })
}

/// `work` on each item, spread over one thread per core; results in the
/// items' order.
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, work(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a plugin loader panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}
