//! Hands decoded events to a route's plugins, in order: inline for
//! `respond` routes, on a background task for `queue` routes.
//!
//! Queue delivery is in-process for now: an event accepted shortly before
//! a crash can be lost. The durable store replaces [`enqueue`].

use std::sync::Arc;
use std::time::Instant;

use crate::event::Event;
use crate::routes::Route;
use crate::runtime::{CallError, Reply};

/// A plugin that failed an event, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`: {error}")]
pub struct PluginFailure {
    pub plugin: String,
    pub error: CallError,
}

/// Runs every plugin of `route` on `event`, in order, stopping at the
/// first failure. The answer is the last reply any plugin gave.
pub async fn run(route: &Route, event: &Event) -> Result<Option<Reply>, PluginFailure> {
    let mut answer = None;
    for plugin in &route.plugins {
        let started = Instant::now();
        let outcome = plugin.handle(event).await;
        let micros = started.elapsed().as_micros() as u64;
        match outcome {
            Ok(reply) => {
                tracing::debug!(
                    route = %route.name,
                    delivery_id = %event.source.delivery_id,
                    plugin = plugin.name(),
                    micros,
                    "plugin handled event"
                );
                if reply.is_some() {
                    answer = reply;
                }
            }
            Err(error) => {
                tracing::warn!(
                    route = %route.name,
                    delivery_id = %event.source.delivery_id,
                    plugin = plugin.name(),
                    micros,
                    %error,
                    "plugin failed event"
                );
                return Err(PluginFailure {
                    plugin: plugin.name().to_owned(),
                    error,
                });
            }
        }
    }
    Ok(answer)
}

/// Hands `events` to the route's plugins in the background.
pub fn enqueue(route: Arc<Route>, events: Vec<Event>) {
    tokio::spawn(async move {
        for event in &events {
            // Failures are logged by `run`; retries come with the store.
            let _ = run(&route, event).await;
        }
    });
}
