//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod capabilities;
mod chain;
mod check;
mod conformance;
mod delivery;
mod exposition;
mod fetch_limits;
mod fixtures;
mod gate;
mod goflow;
mod inflight;
mod ops;
mod pool;
mod providers;
mod refusals;
mod reload;
mod sandbox;
mod scaffold;
mod secrets;
mod sign;
mod truora;
