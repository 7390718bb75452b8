//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod amplification;
mod capabilities;
mod check;
mod conformance;
mod delivery;
mod egress;
mod empty_secrets;
mod exposition;
mod fixtures;
mod forwarded;
mod goflow;
mod hardening;
mod log_hygiene;
mod ops;
mod pool;
mod providers;
mod refusals;
mod reload;
mod sandbox;
mod scaffold;
mod sign;
mod truora;
