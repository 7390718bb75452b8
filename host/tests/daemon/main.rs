//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod admin_api;
mod admin_live;
mod amplification;
mod aot;
mod call;
mod capabilities;
mod chain;
mod check;
mod conformance;
mod console;
mod delivery;

mod door;
mod dry_run;
mod egress;
mod empty_secrets;
mod exposition;
mod fetch_limits;
mod first_run;
mod fixtures;

mod forwarded;
mod gate;
mod goflow;
mod hardening;
mod hmac_plugin;
mod in_process;
mod inflight;
mod log_hygiene;
mod more_providers;
mod ops;
mod paddle;
mod plugin_provider;
mod pool;
mod provider_isolation;
mod providers;
mod refusals;
mod reload;
mod sandbox;
mod scaffold;
mod secrets;
mod shared_store;
mod shopify;
mod sign;
mod telemetry;
mod truora;
