//! wirehook: receives webhooks from messaging providers, verifies each
//! request over its raw bytes, decodes it into a typed event and hands the
//! event to sandboxed WebAssembly plugins.
//!
//! Data flows one way: [`server`] (request) → [`providers`] (verify,
//! decode) → [`dispatch`] → [`runtime`] (plugin) → reply or done.
//! Modules depend one way too: [`cli`] → [`daemon`] → [`server`] →
//! ([`providers`], [`dispatch`]) → ([`runtime`], [`store`]) → [`config`]
//! and the leaf types ([`origin`], [`algorithm`], [`secret`]).

// Denied, not forbidden: `runtime::aot::trusted` alone allows it, for
// the one call that loads a verified precompiled plugin.
#![deny(unsafe_code)]

pub mod admin;
pub mod algorithm;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod event;
pub mod logging;
pub mod metrics;
pub mod origin;
pub mod providers;
pub mod reload;
pub mod routes;
pub mod runtime;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod tls;
