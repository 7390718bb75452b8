//! The one line `wirehook run` prints on standard output once it serves:
//! where, which routes and plugins, and how long the start took.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::Mode;
use crate::routes::RouteTable;

/// What the ready line says besides the table.
pub(super) struct Ready {
    pub(super) addr: SocketAddr,
    pub(super) tls: bool,
    pub(super) metrics: Option<SocketAddr>,
    /// The admin API and console, when `[admin] listen` is set.
    pub(super) admin: Option<SocketAddr>,
    pub(super) took: Duration,
}

/// `wirehook ready in 0.41 s on http://127.0.0.1:8080: routes
/// /hooks/orders (goflow, respond: order-status), …; plugins order-status,
/// router (2 precompiled); metrics on http://127.0.0.1:9464/metrics`.
pub(super) fn line(table: &RouteTable, ready: &Ready) -> String {
    let scheme = if ready.tls { "https" } else { "http" };
    let mut routes: Vec<String> = table
        .routes()
        .map(|route| {
            let mode = match route.mode {
                Mode::Queue => "queue",
                Mode::Respond => "respond",
            };
            let plugins: Vec<&str> = route.plugins.iter().map(|p| &**p.name()).collect();
            let plugins = if plugins.is_empty() {
                "no plugins".to_owned()
            } else {
                plugins.join(", ")
            };
            format!(
                "{} ({}, {mode}: {plugins})",
                route.path, route.provider_name
            )
        })
        .collect();
    routes.sort();
    let plugins: Vec<&str> = table.plugins().map(|p| &**p.name()).collect();
    let precompiled = table.plugins().filter(|p| p.is_precompiled()).count();
    let mut line = format!(
        "wirehook ready in {:.2} s on {scheme}://{}: routes {}; plugins {} ({precompiled} precompiled)",
        ready.took.as_secs_f64(),
        ready.addr,
        if routes.is_empty() {
            "none".to_owned()
        } else {
            routes.join(", ")
        },
        if plugins.is_empty() {
            "none".to_owned()
        } else {
            plugins.join(", ")
        },
    );
    if let Some(metrics) = ready.metrics {
        line.push_str(&format!("; metrics on http://{metrics}/metrics"));
    }
    if let Some(admin) = ready.admin {
        line.push_str(&format!("; console on {scheme}://{admin}/"));
    }
    line
}
