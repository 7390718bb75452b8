//! What a provider plugin's store holds, and the `keyed` interface it
//! imports: MACs, verdicts and encodings computed by the host with the
//! route's secrets, which never enter guest memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::provider_types::Hash;
use super::bindings::{keyed, provider_types};
use crate::runtime::limits::MemoryCap;
use crate::secret::Secret;

/// Log lines one call may write: a verifier runs on every request,
/// authenticated or not, so its log must not grow with a flood.
const LOG_LINES_PER_CALL: u32 = 4;

/// Bytes of a log line kept.
const MAX_LOG_LINE_BYTES: usize = 1024;

/// Bytes of guest stderr kept per instance.
const STDERR_CAPACITY: usize = 4 * 1024;

/// The keys a route gives its provider plugin: `secret`, and `secrets`
/// by name. Only the host reads them.
#[derive(Default)]
pub struct Keys {
    pub secret: Option<Secret>,
    pub named: BTreeMap<String, Secret>,
}

impl Keys {
    fn get(&self, name: Option<&str>) -> Result<&[u8], String> {
        match name {
            None => self
                .secret
                .as_ref()
                .map(Secret::expose)
                .ok_or_else(|| "the route has no `secret`".to_owned()),
            Some(name) => self
                .named
                .get(name)
                .map(Secret::expose)
                .ok_or_else(|| format!("the route has no `secrets.{name}`")),
        }
    }
}

/// The data of one call's store: a fresh one per request.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: MemoryCap,
    keys: Arc<Keys>,
    /// For log lines.
    plugin: Arc<str>,
    route: Arc<str>,
    pub(super) deadline: Instant,
    logs_left: u32,
    pub(super) stderr: MemoryOutputPipe,
}

impl crate::runtime::limits::Bounded for State {
    fn memory_cap(&mut self) -> &mut MemoryCap {
        &mut self.limiter
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl State {
    /// Readies a kept store for its next call: that call's deadline and
    /// its own allowance of log lines.
    pub(super) fn next_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.logs_left = LOG_LINES_PER_CALL;
    }

    /// Whether the guest wrote to stderr: such an instance is not kept,
    /// so that the stderr a failure logs is always its own call's.
    pub(super) fn wrote_to_stderr(&self) -> bool {
        !self.stderr.contents().is_empty()
    }

    pub(super) fn new(
        keys: Arc<Keys>,
        plugin: Arc<str>,
        route: Arc<str>,
        limiter: MemoryCap,
        deadline: Instant,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        Self {
            wasi: crate::runtime::host::empty_world(&stderr),
            table: ResourceTable::new(),
            limiter,
            keys,
            plugin,
            route,
            deadline,
            logs_left: LOG_LINES_PER_CALL,
            stderr,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl provider_types::Host for State {}

/// HMAC of `message` under `key` with `alg`.
pub fn hmac(alg: Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    match alg {
        Hash::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
        Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
        Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
    }
}

impl keyed::Host for State {
    fn hmac(
        &mut self,
        key: Option<String>,
        alg: Hash,
        message: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let key = self.keys.get(key.as_deref())?;
        Ok(hmac(alg, key, &message))
    }

    fn verify_mac(
        &mut self,
        key: Option<String>,
        alg: Hash,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, String> {
        let key = self.keys.get(key.as_deref())?;
        Ok(bool::from(hmac(alg, key, &message).ct_eq(&expected)))
    }

    fn verify_jwt_hs256(
        &mut self,
        key: Option<String>,
        token: String,
        leeway_secs: u32,
    ) -> Result<String, String> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let key = self.keys.get(key.as_deref())?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = u64::from(leeway_secs);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(key),
            &validation,
        )
        .map_err(|e| e.to_string())?;
        Ok(claims.claims.to_string())
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> bool {
        bool::from(a.ct_eq(&b))
    }

    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }

    fn base64_encode(&mut self, data: Vec<u8>) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }

    fn base64_decode(&mut self, text: String) -> Result<Vec<u8>, String> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text.trim()).ok())
            .ok_or_else(|| "not base64".to_owned())
    }

    fn hex_encode(&mut self, data: Vec<u8>) -> String {
        hex::encode(data)
    }

    fn hex_decode(&mut self, text: String) -> Result<Vec<u8>, String> {
        hex::decode(text.trim()).map_err(|e| e.to_string())
    }

    fn now_ms(&mut self) -> u64 {
        crate::clock::now_ms()
    }

    fn log(&mut self, message: String) {
        if self.logs_left == 0 {
            return;
        }
        self.logs_left -= 1;
        let message = crate::text::truncate(&message, MAX_LOG_LINE_BYTES);
        let message = crate::text::escape(&message);
        tracing::info!(plugin = %self.plugin, route = %self.route, line = %message, "provider plugin log");
    }
}
