//! The footprint tables: start-up with an empty and a filled compilation
//! cache, and resident memory idle and under load, with ten copies of the
//! Rust order-status and with the Python and JavaScript ones.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::{Footprint, FootprintFigures};
use wirehook_bench::targets::Site;

use super::{Bench, failed};

impl Bench<'_> {
    /// Memory and start-up with ten copies of the Rust order-status, and
    /// with the Python and JavaScript ones.
    pub(super) fn footprints(&self) -> anyhow::Result<Vec<Footprint>> {
        let rust = self.paths.plugin("order-status").expect("checked at start");
        let ten: Vec<_> = (0..10)
            .map(|i| (format!("order-status-{i}"), rust.clone()))
            .collect();
        let mut footprints = vec![Footprint {
            name: "ten Rust order-status".to_owned(),
            result: self.footprint("ten-rust", &ten).map_err(|e| failed(&e)),
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
            &running,
            &format!("footprint-{name}"),
            "goflow",
            Expect::OrderStatus,
            &paths,
            duration,
        )?;
        if load.errors > 0 {
            bail!(
                "{name}: {} errors under load (first wrong answer: {})",
                load.errors,
                load.first_wrong.as_deref().unwrap_or("none")
            );
        }
        let figures = FootprintFigures {
            cold_start_ms: millis(cold),
            warm_start_ms: millis(running.startup),
            idle_rss_kib,
            loaded_rss_kib: running.rss_kib(),
        };
        eprintln!("footprint {name}: {figures:?}");
        Ok(figures)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
