//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod capabilities;
mod check;
mod conformance;
mod delivery;
mod door;
mod exposition;
mod fixtures;
mod goflow;
mod ops;
mod pool;
mod providers;
mod refusals;
mod reload;
mod sandbox;
mod scaffold;
mod sign;
mod truora;
