//! Provider plugins: components for the `provider` world (wit/provider/)
//! that prove and decode a provider's requests in place of a built-in
//! provider. Each request gets a fresh instance from the pre-instantiated
//! component (or, with the route's `isolation = "pooled"`, an instance
//! its route's earlier requests left, pooled as a plugin's instances
//! are), under the plugins' memory cap and
//! the route's own short deadline (it runs on every request,
//! authenticated or not); the keys stay on the host side ([`keyed`]). A trap, a timeout or an answer
//! that breaks the world's rules is a [`ProviderFailure`], which the
//! server refuses the request for, never a 500.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::limits::{self, Limits, MemoryCap};
use super::pool::Pool;
use crate::config::Isolation;
use crate::event::{Decoded, Payload};
use crate::providers::{Budget, Rejection, Request};

mod keyed;

use keyed::State;
pub use keyed::{Keys, hmac};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/provider",
        world: "provider",
        exports: { default: async },
    });

    pub use self::wirehook::plugin::{keyed, provider_types};
}

use bindings::provider_types;

/// Calls of one provider plugin running at once; more wait for a place
/// within their deadline.
const MAX_CONCURRENT_CALLS: usize = 64;

/// Extra time the async timeout gives over the epoch deadline, which is
/// the normal way a slow call ends.
const TIMEOUT_GRACE: Duration = Duration::from_millis(50);

/// Why a provider plugin gave no usable answer: counted, and the request
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFailure {
    #[error("provider plugin trapped")]
    Trap,
    #[error("provider plugin exceeded its deadline of {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("provider plugin answered against its world: {0}")]
    BadOutput(String),
}

impl ProviderFailure {
    /// The `reason` label of its verification failure metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Self::Trap => "plugin_trap",
            Self::Timeout(_) => "plugin_timeout",
            Self::BadOutput(_) => "plugin_bad_output",
        }
    }

    /// The refusal the request gets: unproven, so 401, except an answer
    /// the plugin made against its world (400).
    pub fn rejection(&self) -> Rejection {
        match self {
            Self::BadOutput(_) => Rejection::bad_request(self.to_string()),
            _ => Rejection::unauthorized(self.to_string()),
        }
    }
}

/// What `verify` answered.
pub type Verdict = Result<Vec<Decoded>, Rejection>;

/// What `handshake` answered: `None` when the plugin makes none.
pub type HandshakeVerdict = Result<Option<(String, String)>, Rejection>;

/// A request as [`ProviderPlugin::sign`] built it.
pub type SignedRequest = (Vec<(String, String)>, Vec<u8>);

/// A provider plugin's component, compiled and pre-instantiated: shared
/// by every route that names it, and kept across a reload while its bytes
/// are the same.
pub struct CompiledProvider {
    name: Arc<str>,
    sha256: [u8; 32],
    engine: Engine,
    pre: bindings::ProviderPre<State>,
}

impl CompiledProvider {
    /// Compiles (or takes from the cache or its precompiled artifact) the
    /// component in `bytes`, read from `path`, and checks that it is a
    /// provider.
    pub fn compile(
        engine: &Engine,
        name: &str,
        path: &std::path::Path,
        bytes: &[u8],
    ) -> Result<Arc<Self>, String> {
        let component = match super::aot::load(engine, path, bytes) {
            Some(component) => component,
            None => Component::new(engine, bytes)
                .map_err(|e| format!("{} is not a valid component: {e:#}", path.display()))?,
        };
        let mut linker: Linker<State> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("{e:#}"))?;
        bindings::Provider::add_to_linker::<State, HasSelf<State>>(&mut linker, |state| state)
            .map_err(|e| format!("{e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::ProviderPre::new)
            .map_err(|e| {
                format!(
                    "{} does not implement the wirehook:plugin/provider world: {e:#}",
                    path.display()
                )
            })?;
        Ok(Arc::new(Self {
            name: Arc::from(name),
            sha256: Sha256::digest(bytes).into(),
            engine: engine.clone(),
            pre,
        }))
    }

    /// Whether this is the component `name` loaded from bytes whose
    /// SHA-256 is `sha256`.
    pub fn is(&self, name: &str, sha256: &[u8; 32]) -> bool {
        &*self.name == name && self.sha256 == *sha256
    }
}

/// An instance a call left, for the next call of its route.
struct Warm {
    store: Store<State>,
    instance: bindings::Provider,
}

/// A compiled provider plugin bound to one route's keys and limits.
pub struct ProviderPlugin {
    compiled: Arc<CompiledProvider>,
    isolation: Isolation,
    /// With `isolation = "pooled"`: the instances calls left, held as a
    /// plugin's are (within `plugins.memory_budget_mb`, each dropped
    /// after `plugins.instance_idle_secs` unused).
    warm: Pool<Warm>,
    route: Arc<str>,
    keys: Arc<Keys>,
    public_url: Option<String>,
    memory_bytes: usize,
    timeout: Duration,
    places: tokio::sync::Semaphore,
}

/// How one route runs its provider plugin.
pub struct ProviderSetup {
    pub route: String,
    pub keys: Keys,
    pub public_url: Option<String>,
    /// `[plugins]`' limits: the memory cap, and for pooled instances the
    /// memory budget and idle time.
    pub limits: Limits,
    /// The route's own deadline.
    pub timeout: Duration,
    pub isolation: Isolation,
}

impl ProviderPlugin {
    /// `compiled` bound to one route's keys and limits.
    pub fn bind(compiled: Arc<CompiledProvider>, setup: ProviderSetup) -> Self {
        Self {
            compiled,
            isolation: setup.isolation,
            warm: Pool::new(setup.limits.memory_budget, setup.limits.idle_after),
            route: Arc::from(setup.route.as_str()),
            keys: Arc::new(setup.keys),
            public_url: setup.public_url,
            memory_bytes: setup.limits.memory_bytes,
            timeout: setup.timeout,
            places: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
        }
    }

    /// The compiled component, for a reload to keep when unchanged.
    pub fn compiled(&self) -> &Arc<CompiledProvider> {
        &self.compiled
    }

    /// The provider name routes and events show: `plugin:NAME`.
    pub fn provider_name(&self) -> String {
        format!("plugin:{}", self.compiled.name)
    }

    /// Proves and decodes `req`.
    pub async fn verify(&self, req: &Request<'_>, path: &str) -> Result<Verdict, ProviderFailure> {
        let request = self.request(req, path);
        let answer = self
            .call(|instance, store| {
                Box::pin(async move { instance.call_verify(store, &request).await })
            })
            .await?;
        let events = match answer {
            Ok(events) => events,
            Err(rejection) => return Ok(Err(rejected(rejection))),
        };
        // As for a built-in decoder: a body built to be expensive is
        // refused, whatever the plugin made of it.
        let mut budget = Budget::for_document(req.body);
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            if let Err(rejection) = budget.take(event.raw_json.len()) {
                return Ok(Err(rejection));
            }
            out.push(decoded(event)?);
        }
        Ok(Ok(out))
    }

    /// Answers a GET.
    pub async fn handshake(
        &self,
        req: &Request<'_>,
        path: &str,
    ) -> Result<HandshakeVerdict, ProviderFailure> {
        let request = self.request(req, path);
        let answer = self
            .call(|instance, store| {
                Box::pin(async move { instance.call_handshake(store, &request).await })
            })
            .await?;
        Ok(match answer {
            Ok(answer) => Ok(answer.map(|a| (a.content_type, a.body))),
            Err(rejection) => Err(rejected(rejection)),
        })
    }

    /// The request the provider would send for `payload` at `now_ms`:
    /// `Ok(None)` when the plugin does not sign.
    pub async fn sign(
        &self,
        payload: &[u8],
        now_ms: u64,
    ) -> Result<Result<Option<SignedRequest>, String>, ProviderFailure> {
        let payload = payload.to_vec();
        let public_url = self.public_url.clone();
        let answer = self
            .call(|instance, store| {
                Box::pin(async move {
                    instance
                        .call_sign(store, &payload, now_ms, public_url.as_deref())
                        .await
                })
            })
            .await?;
        Ok(match answer {
            Ok(signed) => Ok(Some((signed.headers, signed.body))),
            Err(provider_types::SignError::Unsupported) => Ok(None),
            Err(provider_types::SignError::Failed(reason)) => Err(reason),
        })
    }

    fn request(&self, req: &Request<'_>, path: &str) -> provider_types::Request {
        provider_types::Request {
            method: req.method.as_str().to_owned(),
            path: path.to_owned(),
            query: req.query.to_owned(),
            headers: req
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: req.body.to_vec(),
            public_url: self.public_url.clone(),
        }
    }

    /// Runs `export` under the route's deadline, in a fresh instance or,
    /// when the route pools them, one an earlier call left. An instance
    /// is kept only after a call that ended normally.
    async fn call<T, F>(&self, export: F) -> Result<T, ProviderFailure>
    where
        F: for<'a> FnOnce(
            &'a bindings::Provider,
            &'a mut Store<State>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = wasmtime::Result<T>> + Send + 'a>,
        >,
    {
        let deadline = Instant::now() + self.timeout;
        let run = async {
            let _place = self
                .places
                .acquire()
                .await
                .map_err(|_| ProviderFailure::Trap)?;
            let Warm {
                mut store,
                instance,
            } = match self.take_warm() {
                Some(mut warm) => {
                    warm.store.data_mut().next_call(deadline);
                    warm.store.set_epoch_deadline(1);
                    warm
                }
                None => self.instantiate(deadline).await?,
            };
            let outcome = export(&instance, &mut store).await;
            match outcome {
                Ok(answer) => {
                    self.keep(Warm { store, instance });
                    Ok(answer)
                }
                Err(e) => Err(self.failure(&store, e)),
            }
        };
        match tokio::time::timeout(self.timeout + TIMEOUT_GRACE, run).await {
            Ok(result) => result,
            Err(_) => Err(ProviderFailure::Timeout(self.timeout)),
        }
    }

    /// A new instance in a new store, for a call due by `deadline`.
    async fn instantiate(&self, deadline: Instant) -> Result<Warm, ProviderFailure> {
        let state = State::new(
            self.keys.clone(),
            self.compiled.name.clone(),
            self.route.clone(),
            MemoryCap::new(self.memory_bytes),
            deadline,
        );
        let mut store = Store::new(&self.compiled.engine, state);
        limits::bound(&mut store);
        let instance = self
            .compiled
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.failure(&store, e))?;
        Ok(Warm { store, instance })
    }

    fn take_warm(&self) -> Option<Warm> {
        match self.isolation {
            Isolation::Pooled => self.warm.take(),
            Isolation::Event => None,
        }
    }

    fn keep(&self, warm: Warm) {
        if self.isolation != Isolation::Pooled || warm.store.data().wrote_to_stderr() {
            return;
        }
        let bytes = warm.store.data().limiter.peak();
        // One the budget has no room for is dropped here, after the
        // pool's lock is released.
        drop(self.warm.put(warm, bytes));
    }

    fn failure(&self, store: &Store<State>, error: wasmtime::Error) -> ProviderFailure {
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return ProviderFailure::Timeout(self.timeout);
        }
        // The trap's text names the plugin's insides, never a key (the
        // guest has none); stderr is the guest's own and may be noisy, so
        // it is cut.
        let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).into_owned();
        let stderr = crate::text::escape(&crate::text::truncate(stderr.trim(), 512)).into_owned();
        tracing::warn!(plugin = %self.compiled.name, route = %self.route, error = %format!("{error:#}"), %stderr, "provider plugin failed");
        ProviderFailure::Trap
    }
}

/// The plugin's refusal as wirehook's: a status outside the world's four
/// is taken as unproven.
fn rejected(rejection: provider_types::Rejection) -> Rejection {
    let reason = crate::text::truncate(&rejection.reason, 256).into_owned();
    match rejection.status {
        400 => Rejection::BadRequest(reason),
        403 => Rejection::Forbidden(reason),
        415 => Rejection::UnsupportedMediaType(reason),
        _ => Rejection::Unauthorized(reason),
    }
}

fn decoded(event: provider_types::DecodedEvent) -> Result<Decoded, ProviderFailure> {
    if serde_json::from_str::<serde::de::IgnoredAny>(&event.raw_json).is_err() {
        return Err(ProviderFailure::BadOutput(
            "an event's raw-json is not JSON".to_owned(),
        ));
    }
    Ok(Decoded {
        kind: event.kind,
        payload: Payload::Other,
        raw_json: event.raw_json,
        provider_id: event.provider_id,
    })
}
