//! The KV capability's storage in the embedded store: one table, keyed
//! by plugin namespace and key, written through the same group commit.

use rusqlite::{OptionalExtension, params};

use super::sqlite::Commit;
use super::{KvStore, SqliteStore, StoreError};

#[async_trait::async_trait]
impl KvStore for SqliteStore {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.run(Commit::Relaxed, move |conn| {
            Ok(conn
                .prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")?
                .query_row(params![namespace, key], |row| row.get(0))
                .optional()?)
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
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.run(Commit::Durable, move |conn| {
            let others: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(length(key) + length(value)), 0) FROM kv
                     WHERE namespace = ?1 AND key != ?2",
                )?
                .query_row(params![namespace, key], |row| row.get(0))?;
            if others as u64 + (key.len() + value.len()) as u64 > max_total {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![namespace, key, value])?;
            Ok(true)
        })
        .await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.run(Commit::Durable, move |conn| {
            conn.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")?
                .execute(params![namespace, key])?;
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
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        self.run(Commit::Relaxed, move |conn| {
            let keys = conn
                .prepare_cached(
                    "SELECT key FROM kv WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2
                     ORDER BY key LIMIT ?3",
                )?
                .query_map(params![namespace, prefix, limit as i64], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(keys)
        })
        .await
    }
}
