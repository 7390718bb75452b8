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

/// Runs `call` inside a `kv {operation}` span, and records how it ended
/// there: the kind of outcome, and the error status for a store failure
/// (whose message may quote a key, so it is not recorded).
async fn traced<T>(
    operation: &'static str,
    namespace: &str,
    call: impl Future<Output = Result<T, StoreError>>,
    outcome: impl Fn(&T) -> &'static str,
) -> Result<T, StoreError> {
    let span = tracing::info_span!(
        target: TARGET,
        "kv",
        otel.name = format!("kv {operation}").as_str(),
        otel.kind = "client",
        otel.status_code = Empty,
        db.operation.name = operation,
        wirehook.plugin = namespace,
        wirehook.outcome = Empty,
    );
    let result = call.instrument(span.clone()).await;
    if !span.is_disabled() {
        match &result {
            Ok(value) => span.record("wirehook.outcome", outcome(value)),
            Err(_) => {
                span.record("otel.status_code", "ERROR");
                span.record("wirehook.outcome", "error")
            }
        };
    }
    result
}

#[async_trait::async_trait]
impl KvStore for TracedKv {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        traced(
            "get",
            namespace,
            self.inner.kv_get(namespace, key),
            |value| {
                if value.is_some() { "found" } else { "absent" }
            },
        )
        .await
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        max_total: u64,
    ) -> Result<bool, StoreError> {
        let call = self.inner.kv_set(namespace, key, value, max_total);
        traced("set", namespace, call, |wrote| {
            if *wrote { "written" } else { "over quota" }
        })
        .await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let call = self.inner.kv_delete(namespace, key);
        traced("delete", namespace, call, |()| "deleted").await
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let call = self.inner.kv_list(namespace, prefix, limit);
        traced("list", namespace, call, |_| "listed").await
    }
}
