//! KV in memory: a snapshot of plugins' namespaces taken from a store,
//! which a contained trial reads and writes without touching the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::{KvStore, StoreError};

/// Keys by namespace and name, in order (`kv-list` returns them sorted).
type Entries = BTreeMap<(String, String), Vec<u8>>;

#[derive(Default)]
pub struct MemoryKv {
    entries: Mutex<Entries>,
}

impl MemoryKv {
    /// Everything `namespaces` hold in `store` now.
    pub async fn snapshot(
        store: &dyn KvStore,
        namespaces: impl IntoIterator<Item = &str>,
    ) -> Result<Self, StoreError> {
        let mut entries = Entries::new();
        for namespace in namespaces {
            for key in store.kv_list(namespace, "", i64::MAX as usize).await? {
                if let Some(value) = store.kv_get(namespace, &key).await? {
                    entries.insert((namespace.to_owned(), key), value);
                }
            }
        }
        Ok(Self {
            entries: Mutex::new(entries),
        })
    }

    /// A copy of what this holds now, written apart from it.
    pub fn fork(&self) -> Self {
        Self {
            entries: Mutex::new(self.lock().clone()),
        }
    }

    /// Every entry, as `(namespace, key, value)`.
    pub fn entries(&self) -> Vec<(String, String, Vec<u8>)> {
        self.lock()
            .iter()
            .map(|((namespace, key), value)| (namespace.clone(), key.clone(), value.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().expect("memory kv poisoned")
    }
}

/// Bytes one entry counts for, as the store counts them.
fn size(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

#[async_trait::async_trait]
impl KvStore for MemoryKv {
    async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .lock()
            .get(&(namespace.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn kv_set(
        &self,
        namespace: &str,
        key: &str,
        value: Vec<u8>,
        max_total: u64,
    ) -> Result<bool, StoreError> {
        let mut entries = self.lock();
        let others: u64 = entries
            .iter()
            .filter(|((ns, k), _)| ns == namespace && k != key)
            .map(|((_, k), v)| size(k, v))
            .sum();
        if others + size(key, &value) > max_total {
            return Ok(false);
        }
        entries.insert((namespace.to_owned(), key.to_owned()), value);
        Ok(true)
    }

    async fn kv_delete(&self, namespace: &str, key: &str) -> Result<(), StoreError> {
        self.lock().remove(&(namespace.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .keys()
            .filter(|(ns, key)| ns == namespace && key.starts_with(prefix))
            .map(|(_, key)| key.clone())
            .take(limit)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fork_is_written_apart_and_the_quota_holds() {
        let base = MemoryKv::default();
        assert!(base.kv_set("p", "a", b"1".to_vec(), 100).await.unwrap());
        let fork = base.fork();
        assert!(fork.kv_set("p", "b", b"2".to_vec(), 100).await.unwrap());
        fork.kv_delete("p", "a").await.unwrap();
        assert_eq!(base.kv_list("p", "", 10).await.unwrap(), ["a"]);
        assert_eq!(fork.kv_list("p", "", 10).await.unwrap(), ["b"]);
        assert_eq!(fork.kv_get("q", "b").await.unwrap(), None);
        // 2 bytes of `b` are there; 3 more would make 5.
        assert!(!fork.kv_set("p", "c", b"xx".to_vec(), 4).await.unwrap());
        assert!(fork.kv_set("p", "b", b"xyz".to_vec(), 4).await.unwrap());
    }
}
