//! Integration tests: the real daemon, real compiled plugins, real signed
//! requests over loopback. Build the plugins first: `plugins/build --test`.

mod harness;

mod check;
mod fixtures;
mod goflow;
mod providers;
mod refusals;
mod sandbox;
mod sign;
mod truora;
