//! Rows 8: the queue row on PostgreSQL, with one instance and with two
//! sharing the database. Each round starts a PostgreSQL server of its
//! own the way wirehook's tests do (`initdb` into a temporary directory,
//! a unix socket, no TCP, as `nobody` when root), so that the queue starts
//! empty; the load generator spreads its connections over the instances.

use std::path::Path;

use anyhow::anyhow;
use wirehook_bench::expect::Expect;
use wirehook_bench::report::Measured;
use wirehook_bench::targets::Site;

use super::Bench;
use super::wirehook::QUEUE_GOFLOW;

#[path = "../../../../host/tests/daemon/harness/postgres.rs"]
#[allow(dead_code)]
mod server;

/// Why the rows are absent, when they are.
pub(super) fn available() -> Result<(), String> {
    match server::bin_dir() {
        Some(_) => Ok(()),
        None => Err("not available (PostgreSQL's initdb is not installed)".to_owned()),
    }
}

impl Bench<'_> {
    /// One round of the queue row on a fresh PostgreSQL with `instances`
    /// daemons.
    pub(super) fn postgres_row(
        &self,
        id: &str,
        round: usize,
        instances: usize,
        wasm: &Path,
    ) -> anyhow::Result<Measured> {
        let name = format!("bench-row-{id}-{instances}-{round}");
        // The shared harness asserts; a server that will not start fails
        // the row, not the run.
        let server = std::panic::catch_unwind(|| server::PgServer::start(&name))
            .map_err(|_| anyhow!("PostgreSQL did not start (see above)"))?
            .ok_or_else(|| anyhow!("PostgreSQL is not installed"))?;
        let url = server.url();
        // Row 4's route, on PostgreSQL.
        let routes = self.routes(&QUEUE_GOFLOW)?;
        let cache = self.cache();
        let sites = (0..instances)
            .map(|n| {
                Site::create_on(
                    &self.scratch.join(format!("{name}-{n}")),
                    &[("order-status".to_owned(), wasm.to_owned())],
                    &routes,
                    Some(&cache),
                    Some(&url),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let measured = {
            let running = sites
                .iter()
                .map(|site| site.start(&self.paths.exe("wirehook")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let running: Vec<_> = running.iter().collect();
            let mut measured = self.measure_all(
                &running,
                &format!("queue-postgres-{instances}"),
                "goflow",
                Expect::Accepted,
                &["/hooks/orders"],
            )?;
            measured.backlog = Some(sites[0].backlog()?);
            measured
        };
        for site in &sites {
            let _ = std::fs::remove_dir_all(&site.dir);
        }
        drop(server);
        Ok(measured)
    }
}
