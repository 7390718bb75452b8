//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod capabilities;
mod check;
mod delivery;
mod exposition;
mod fixtures;
mod goflow;
mod ops;
mod providers;
mod refusals;
mod reload;
mod sandbox;
mod sign;
mod truora;
