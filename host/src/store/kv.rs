//! The KV capability's storage in the embedded store: one table, keyed
//! by plugin namespace and key, written through the same group commit.
//!
//! The quota counts bytes (of the key's UTF-8 and of the value). Each
//! namespace's total is summed once, on its first write, and then kept
//! up to date by every write, so that a set costs a lookup of the one
//! key, not a scan of the namespace.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite::Commit;
use super::{KvStore, SqliteStore, StoreError};

/// Bytes of keys and values per namespace, for namespaces written since
/// the store opened; only the writer thread takes the lock.
pub(super) type Totals = std::sync::Arc<std::sync::Mutex<HashMap<String, u64>>>;

/// Bytes one entry counts for, as SQL over a row of `kv`.
const ENTRY_BYTES: &str = "length(CAST(key AS BLOB)) + length(value)";

/// The namespace's total, summed if not known yet.
fn total(
    conn: &Connection,
    totals: &mut HashMap<String, u64>,
    namespace: &str,
) -> Result<u64, StoreError> {
    if let Some(total) = totals.get(namespace) {
        return Ok(*total);
    }
    let sum: i64 = conn
        .prepare_cached(&format!(
            "SELECT COALESCE(SUM({ENTRY_BYTES}), 0) FROM kv WHERE namespace = ?1"
        ))?
        .query_row([namespace], |row| row.get(0))?;
    let sum = sum.max(0) as u64;
    totals.insert(namespace.to_owned(), sum);
    Ok(sum)
}

/// Bytes `key` counts for now, 0 if it is not set.
fn entry(conn: &Connection, namespace: &str, key: &str) -> Result<u64, StoreError> {
    let bytes: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_BYTES} FROM kv WHERE namespace = ?1 AND key = ?2"
        ))?
        .query_row(params![namespace, key], |row| row.get(0))
        .optional()?;
    Ok(bytes.unwrap_or(0).max(0) as u64)
}

/// Sets the namespace's total to `new`, and returns the undo for a batch
/// that does not commit: the total is forgotten, and summed again.
fn set_total(
    totals: &Totals,
    guard: &mut HashMap<String, u64>,
    namespace: &str,
    new: u64,
) -> super::sqlite::Undo {
    guard.insert(namespace.to_owned(), new);
    let (totals, namespace) = (totals.clone(), namespace.to_owned());
    Box::new(move || {
        totals
            .lock()
            .expect("kv totals poisoned")
            .remove(&namespace);
    })
}

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
        let totals = self.kv_totals.clone();
        self.run_undoable(Commit::Durable, move |conn| {
            let mut guard = totals.lock().expect("kv totals poisoned");
            let before = total(conn, &mut guard, &namespace)?;
            let others = before.saturating_sub(entry(conn, &namespace, &key)?);
            let after = others + (key.len() + value.len()) as u64;
            if after > max_total {
                return Ok((false, None));
            }
            conn.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![namespace, key, value])?;
            let undo = set_total(&totals, &mut guard, &namespace, after);
            Ok((true, Some(undo)))
        })
        .await
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        let totals = self.kv_totals.clone();
        self.run_undoable(Commit::Durable, move |conn| {
            let mut guard = totals.lock().expect("kv totals poisoned");
            let before = total(conn, &mut guard, &namespace)?;
            let gone = entry(conn, &namespace, &key)?;
            conn.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")?
                .execute(params![namespace, key])?;
            let undo = set_total(&totals, &mut guard, &namespace, before.saturating_sub(gone));
            Ok(((), Some(undo)))
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
