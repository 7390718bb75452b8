//! `wirehook-loadgen`: sends signed provider requests at a fixed
//! concurrency over keep-alive HTTP/1.1 connections and prints one JSON
//! line: throughput and p50/p99/p99.9 latency over the timed window, and
//! how many answers were not the one expected.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wirehook_bench::expect::Expect;
use wirehook_bench::load::{self, Shape};
use wirehook_bench::requests::{Kind, Requests};

#[derive(Debug, Parser)]
#[command(
    name = "wirehook-loadgen",
    about = "Signed webhook load at a fixed concurrency"
)]
struct Args {
    /// The server, e.g. 127.0.0.1:8080; repeated, the connections are
    /// spread over the servers in turn.
    #[arg(long = "addr", required = true)]
    addrs: Vec<SocketAddr>,
    /// Paths to POST to, in turn (repeatable).
    #[arg(long = "path", required = true)]
    paths: Vec<String>,
    /// Whose requests to send.
    #[arg(long, value_enum, default_value = "goflow")]
    provider: Kind,
    /// The route's secret (goflow: the token; truora: the JWT key; hmac:
    /// the MAC key).
    #[arg(long)]
    secret: String,
    /// What every answer must be; any other answer is an error.
    #[arg(long, value_enum)]
    expect: Expect,
    /// Open connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Worker threads of the generator itself (it shares the machine
    /// with the server: one leaves the server the rest).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The name printed in the JSON line.
    #[arg(long, default_value = "load")]
    label: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let requests = Arc::new(Requests::new(
        args.provider,
        &args.secret,
        args.paths.clone(),
    )?);
    let shape = Shape {
        addrs: args.addrs,
        connections: args.connections.max(1),
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        expect: args.expect,
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let outcome = runtime.block_on(load::run(&args.label, &shape, requests))?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}
