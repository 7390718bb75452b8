//! The KV capability's storage on PostgreSQL: one table keyed by plugin
//! namespace and key. A write takes the namespace's advisory lock for its
//! transaction, so that instances writing one namespace at once cannot
//! both fit under the quota and together exceed it.

use super::{PostgresStore, bounded};
use crate::store::{KvStore, StoreError};

#[async_trait::async_trait]
impl KvStore for PostgresStore {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT value FROM kv WHERE namespace = $1 AND key = $2",
                    &[&namespace, &key],
                )
                .await?;
            Ok(row.map(|row| row.get(0)))
        })
        .await
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        max_total: u64,
    ) -> Result<bool, StoreError> {
        bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('wirehook-kv:' || $1))",
                &[&namespace],
            )
            .await?;
            let others: i64 = tx
                .query_one(
                    "SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::BIGINT
                     FROM kv WHERE namespace = $1 AND key <> $2",
                    &[&namespace, &key],
                )
                .await?
                .get(0);
            let after = others.max(0) as u64 + (key.len() + value.len()) as u64;
            if after > max_total {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
                &[&namespace, &key, &value],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        bounded(async {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM kv WHERE namespace = $1 AND key = $2",
                    &[&namespace, &key],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        bounded(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT key FROM kv WHERE namespace = $1 AND starts_with(key, $2)
                     ORDER BY key LIMIT $3",
                    &[&namespace, &prefix, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
        .await
    }
}
