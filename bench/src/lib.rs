//! wirehook's benchmark harness: the load generator's engine
//! ([`load`], [`requests`], the answers it checks in [`expect`]), the targets it is run against
//! ([`targets`]: wirehook, the bare-axum limit, the Express peer) and the
//! report ([`report`], its soak table in [`soak`]); the attack of the "under attack" row ([`attack`]). `bench/run` drives it all; see `bench/README.md`.

#![forbid(unsafe_code)]

pub mod attack;
pub mod expect;
pub mod load;
pub mod report;
pub mod requests;
pub mod soak;
pub mod targets;
