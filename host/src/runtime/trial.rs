//! A call made for a person at a terminal rather than for the daemon
//! (`wirehook call`, `wirehook replay --dry-run`): every host call the
//! plugin makes is recorded, and with effects contained, nothing leaves
//! the process: fetch is refused, and KV reads and writes go to an
//! in-memory copy of the plugin's namespace.
//!
//! The host functions consult the call's [`Trial`], if any, and nothing
//! else changes: grants, limits and refusals are the daemon's own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::store::KvStore;

mod memory_kv;

pub use memory_kv::MemoryKv;

/// Host calls recorded per call at most; a plugin that logs in a loop
/// must not fill the memory of the process watching it.
const MAX_RECORDED: usize = 1000;

/// Where a trial's fetch and KV calls go.
pub enum Effects {
    /// Where the daemon's go: the network, and the store.
    Live,
    /// Nowhere: fetch is refused and KV uses this store instead of the
    /// daemon's (a [`MemoryKv`]).
    Contained(Arc<dyn KvStore>),
}

/// One host call a plugin made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum HostCall {
    Log {
        level: &'static str,
        message: String,
    },
    Fetch {
        method: String,
        url: String,
        /// The response's status, when one came.
        status: Option<u16>,
        /// Why there was no response (refused, unreachable, not made).
        error: Option<String>,
        #[serde(rename = "ms")]
        millis: u64,
    },
    KvGet {
        key: String,
        found: bool,
    },
    KvSet {
        key: String,
        bytes: usize,
    },
    KvDelete {
        key: String,
    },
    KvList {
        prefix: String,
        keys: usize,
    },
    /// A capability call refused (not granted, over a limit).
    Refused {
        capability: String,
        reason: String,
    },
}

/// One call's effects and the record of its host calls.
pub struct Trial {
    effects: Effects,
    calls: Mutex<Vec<HostCall>>,
    /// Calls not recorded past [`MAX_RECORDED`].
    dropped: Mutex<usize>,
}

impl Trial {
    pub fn new(effects: Effects) -> Arc<Self> {
        Arc::new(Self {
            effects,
            calls: Mutex::new(Vec::new()),
            dropped: Mutex::new(0),
        })
    }

    /// The store KV calls use instead of the granted one, if contained.
    pub(super) fn kv(&self) -> Option<&Arc<dyn KvStore>> {
        match &self.effects {
            Effects::Live => None,
            Effects::Contained(kv) => Some(kv),
        }
    }

    pub(super) fn contained(&self) -> bool {
        matches!(self.effects, Effects::Contained(_))
    }

    pub(super) fn record(&self, call: HostCall) {
        let mut calls = self.calls.lock().expect("trial record poisoned");
        if calls.len() < MAX_RECORDED {
            calls.push(call);
        } else {
            *self.dropped.lock().expect("trial record poisoned") += 1;
        }
    }

    /// The host calls made so far, in order, and how many more were not
    /// recorded.
    pub fn calls(&self) -> (Vec<HostCall>, usize) {
        let calls = self.calls.lock().expect("trial record poisoned").clone();
        (calls, *self.dropped.lock().expect("trial record poisoned"))
    }
}

/// Milliseconds, for a record.
pub(super) fn millis(took: Duration) -> u64 {
    u64::try_from(took.as_millis()).unwrap_or(u64::MAX)
}
