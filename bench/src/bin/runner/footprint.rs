//! The footprint tables: start-up with an empty and a filled compilation
//! cache and with plugins compiled ahead of time, and resident memory idle and under load, with ten Rust
//! order-status components and with the Python and JavaScript ones.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::{Footprint, FootprintFigures};
use wirehook_bench::targets::Site;

use super::{Bench, FAILED, failed};

impl Bench<'_> {
    /// Memory and start-up with ten Rust order-status components, and
    /// with the Python and JavaScript ones.
    pub(super) fn footprints(&self) -> anyhow::Result<Vec<Footprint>> {
        let ten = self
            .ten_rust()
            .and_then(|ten| self.footprint("ten-rust", &ten).map_err(|e| failed(&e)));
        let mut footprints = vec![Footprint {
            name: "ten Rust order-status".to_owned(),
            result: ten,
        }];
        for (name, plugin) in [
            ("Python order-status-py", "order-status-py"),
            ("JavaScript order-status-js", "order-status-js"),
        ] {
            let result = self.paths.plugin(plugin).and_then(|wasm| {
                self.footprint(plugin, &[(plugin.to_owned(), wasm)])
                    .map_err(|e| failed(&e))
            });
            footprints.push(Footprint {
                name: name.to_owned(),
                result,
            });
        }
        Ok(footprints)
    }

    /// The ten copies of order-status `plugins/build --bench` builds, each
    /// answering one more order: ten different components, so that an
    /// empty cache compiles ten times.
    fn ten_rust(&self) -> Result<Vec<(String, PathBuf)>, String> {
        let dir = self.paths.target.join("bench-plugins");
        let mut seen = HashSet::new();
        (0..10)
            .map(|n| {
                let name = format!("order-status-{n}");
                let wasm = dir.join(format!("{name}.wasm"));
                let bytes = std::fs::read(&wasm).map_err(|_| {
                    format!("not built ({}: plugins/build --bench)", wasm.display())
                })?;
                if !seen.insert(bytes) {
                    return Err(format!("{FAILED}: {} is a copy of another", wasm.display()));
                }
                Ok((name, wasm))
            })
            .collect()
    }

    /// Starts with an empty cache, restarts with the cache it filled
    /// (idle RSS then), then loads every plugin's route (loaded RSS).
    fn footprint(
        &self,
        name: &str,
        plugins: &[(String, PathBuf)],
    ) -> anyhow::Result<FootprintFigures> {
        let mut routes = String::new();
        let mut paths = Vec::new();
        for (i, (plugin, _)) in plugins.iter().enumerate() {
            routes.push_str(&format!(
                "[[route]]\nname = \"r{i}\"\npath = \"/hooks/r{i}\"\nprovider = \"goflow\"\n\
                 secret = \"env:BENCH_GOFLOW_TOKEN\"\nplugins = [\"{plugin}\"]\nmode = \"respond\"\n\n"
            ));
            paths.push(format!("/hooks/r{i}"));
        }
        // Its own store and cache: the first start compiles everything.
        let site = Site::create(
            &self.scratch.join(format!("footprint-{name}")),
            plugins,
            &routes,
            None,
        )?;
        let wirehook = self.paths.exe("wirehook");
        let cold = site.start(&wirehook)?.startup;
        let running = site.start(&wirehook)?;
        let idle_rss_kib = running.rss_kib();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let duration = (self.args.duration / 2.0).max(1.0);
        let load = self.load(
            &[&running],
            &format!("footprint-{name}"),
            "goflow",
            Expect::OrderStatus,
            &paths,
            self.args.warmup,
            duration,
        )?;
        if load.errors > 0 {
            bail!(
                "{name}: {} errors under load (first wrong answer: {})",
                load.errors,
                load.first_wrong.as_deref().unwrap_or("none")
            );
        }
        let warm = running.startup;
        let loaded_rss_kib = running.rss_kib();
        drop(running);
        let precompiled = self.precompiled_start(name, plugins, &routes)?;
        let figures = FootprintFigures {
            cold_start_ms: millis(cold),
            warm_start_ms: millis(warm),
            precompiled_start_ms: millis(precompiled),
            idle_rss_kib,
            loaded_rss_kib,
        };
        eprintln!("footprint {name}: {figures:?}");
        Ok(figures)
    }
}

impl Bench<'_> {
    /// The first start of a fresh site whose plugins were compiled ahead
    /// of time (`wirehook compile`, not timed): what a deployment that
    /// runs `plugins/build` or the install steps' compile gets.
    fn precompiled_start(
        &self,
        name: &str,
        plugins: &[(String, PathBuf)],
        routes: &str,
    ) -> anyhow::Result<Duration> {
        let site = Site::create(
            &self.scratch.join(format!("footprint-{name}-precompiled")),
            plugins,
            routes,
            None,
        )?;
        let wirehook = self.paths.exe("wirehook");
        let compiled = std::process::Command::new(&wirehook)
            .arg("compile")
            .arg(site.dir.join("plugins"))
            .env("RUST_LOG", "warn")
            .output()?;
        if !compiled.status.success() {
            bail!(
                "wirehook compile: {}",
                String::from_utf8_lossy(&compiled.stderr)
            );
        }
        Ok(site.start(&wirehook)?.startup)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
