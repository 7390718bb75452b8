//! `wirehook sign --provider plugin:NAME`: the request a provider plugin
//! signs through its own `sign` export, with the secret given here kept
//! on the host side as the daemon keeps a route's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::{Isolation, PluginsConfig};
use crate::providers::Signed;
use crate::runtime::Limits;
use crate::runtime::provider::{CompiledProvider, Keys, ProviderPlugin, ProviderSetup};
use crate::secret::Secret;

/// How long the plugin may take to sign: generous, nothing waits on it.
const SIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// Memory the plugin may use while signing.
const SIGN_MEMORY_BYTES: usize = 64 << 20;

/// The component of provider plugin `name`: `wasm`, else
/// `plugins/dist/NAME.wasm`.
pub fn wasm_path(name: &str, wasm: Option<&Path>) -> PathBuf {
    wasm.map_or_else(
        || Path::new("plugins/dist").join(format!("{name}.wasm")),
        Path::to_owned,
    )
}

/// What plugin `name` (its component at `wasm`) sends for `payload`,
/// keyed by `secret`, to `public_url`.
pub fn sign(
    name: &str,
    wasm: &Path,
    secret: Secret,
    public_url: Option<String>,
    payload: &[u8],
) -> anyhow::Result<Signed> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let engine = crate::runtime::compiling_engine()?;
    let setup = ProviderSetup {
        route: "sign".to_owned(),
        keys: Keys {
            secret: Some(secret),
            named: Default::default(),
        },
        public_url,
        limits: Limits {
            memory_bytes: SIGN_MEMORY_BYTES,
            ..Limits::from(&PluginsConfig::default())
        },
        timeout: SIGN_TIMEOUT,
        isolation: Isolation::Event,
    };
    let compiled = CompiledProvider::compile(&engine, name, wasm, &bytes)
        .map_err(|reason| anyhow::anyhow!("{reason}"))?;
    let plugin = ProviderPlugin::bind(compiled, setup);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the async runtime")?;
    let signed = runtime
        .block_on(plugin.sign(payload, crate::clock::now_ms()))
        .map_err(|failure| anyhow::anyhow!("{failure}"))?
        .map_err(|reason| anyhow::anyhow!("cannot sign: {reason}"))?
        .ok_or_else(|| anyhow::anyhow!("provider plugin `{name}` does not sign"))?;
    Ok(Signed {
        headers: signed.0,
        body: signed.1,
    })
}
