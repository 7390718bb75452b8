//! The Express peer's install: `bench/express-peer` copied into
//! target/ and installed there with `npm ci` from its pinned lock file.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::Bench;

impl Bench<'_> {
    /// Installs the Express peer (`bench/express-peer`) into target/,
    /// never into the repository: `npm ci` from its pinned lock file,
    /// again whenever the lock file changes.
    pub(super) fn express_dir(&self) -> Result<PathBuf, String> {
        let source = self.paths.root.join("bench/express-peer");
        let dir = self.paths.target.join("bench/express-peer");
        let lock = "package-lock.json";
        let install = || -> anyhow::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let installed = std::fs::read(dir.join(lock)).ok();
            let wanted = std::fs::read(source.join(lock))
                .with_context(|| format!("reading {}", source.join(lock).display()))?;
            for file in ["server.js", "package.json", lock] {
                std::fs::copy(source.join(file), dir.join(file))
                    .with_context(|| format!("copying {file}"))?;
            }
            if installed.as_deref() != Some(&wanted[..])
                || !dir.join("node_modules/express").is_dir()
            {
                let status = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir)
                    .stdout(Stdio::null())
                    .status()
                    .context("running npm")?;
                if !status.success() {
                    // The next run must not take a half install for done.
                    let _ = std::fs::remove_file(dir.join(lock));
                    bail!("npm ci failed: {status}");
                }
            }
            Ok(())
        };
        install().map_err(|e| format!("not available: {e:#}"))?;
        Ok(dir)
    }
}
