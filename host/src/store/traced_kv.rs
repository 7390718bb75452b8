//! A span around each call of the KV capability, so that a trace shows
//! the state a plugin read and wrote between its `fetch`es. The span
//! names the operation and the plugin's namespace, never a key or a
//! value: both are the plugin's data, and may be a contact's.

use std::sync::Arc;

use tracing::Instrument as _;
use tracing::field::Empty;

use super::{KvStore, StoreError};
use crate::telemetry::TARGET;

/// `inner`, with each call traced.
pub struct TracedKv {
    inner: Arc<dyn KvStore>,
}

impl TracedKv {
    pub fn new(inner: Arc<dyn KvStore>) -> Self {
        Self { inner }
    }
}

fn span(operation: &'static str, namespace: &str) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        "kv",
        otel.name = format!("kv {operation}").as_str(),
        otel.kind = "client",
        otel.status_code = Empty,
        db.operation.name = operation,
        wirehook.plugin = namespace,
        wirehook.outcome = Empty,
    )
}

/// Records how a call ended on its span: the kind of outcome, and the
/// error status for a store failure (its message may quote a key).
fn close<T>(
    span: &tracing::Span,
    result: &Result<T, StoreError>,
    outcome: impl Fn(&T) -> &'static str,
) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(value) => span.record("wirehook.outcome", outcome(value)),
        Err(_) => {
            span.record("otel.status_code", "ERROR");
            span.record("wirehook.outcome", "error")
        }
    };
}

#[async_trait::async_trait]
impl KvStore for TracedKv {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let span = span("get", namespace);
        let result = self
            .inner
            .kv_get(namespace, key)
            .instrument(span.clone())
            .await;
        close(&span, &result, |value| {
            if value.is_some() { "found" } else { "absent" }
        });
        result
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        max_total: u64,
    ) -> Result<bool, StoreError> {
        let span = span("set", namespace);
        let result = self
            .inner
            .kv_set(namespace, key, value, max_total)
            .instrument(span.clone())
            .await;
        close(&span, &result, |wrote| {
            if *wrote { "written" } else { "over quota" }
        });
        result
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let span = span("delete", namespace);
        let result = self
            .inner
            .kv_delete(namespace, key)
            .instrument(span.clone())
            .await;
        close(&span, &result, |()| "deleted");
        result
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let span = span("list", namespace);
        let result = self
            .inner
            .kv_list(namespace, prefix, limit)
            .instrument(span.clone())
            .await;
        close(&span, &result, |_| "listed");
        result
    }
}
