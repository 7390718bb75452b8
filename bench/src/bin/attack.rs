//! `wirehook-attack`: runs the attack of the "under attack" row against a
//! wirehook daemon (see `wirehook_bench::attack`): prints `attacking`
//! once every slow connection is open, attacks until its standard input
//! closes (or `--max-seconds` pass), then prints one JSON line of what
//! the attack did.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::io::AsyncReadExt as _;
use wirehook_bench::attack::Attack;

#[derive(Debug, Parser)]
#[command(
    name = "wirehook-attack",
    about = "Slow connections and bad signatures against a wirehook daemon"
)]
struct Args {
    /// The daemon, on loopback, e.g. 127.0.0.1:8080.
    #[arg(long)]
    addr: SocketAddr,
    /// The goflow route's token, which the goflow attackers get wrong.
    #[arg(long)]
    goflow_token: String,
    /// The longest the attack lasts if its input never closes.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
    #[command(flatten)]
    attack: Attack,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        anyhow::bail!("the attack goes to loopback only, not {}", args.addr);
    }
    // One thread, like the load generator: it shares the cores with the
    // daemon and the load.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let running = args.attack.start(args.addr, &args.goflow_token).await?;
        println!("attacking");
        let mut input = tokio::io::stdin();
        let mut buf = [0u8; 64];
        let until_closed = async { while input.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs_f64(args.max_seconds), until_closed).await;
        let summary = running.stop().await?;
        println!("{}", serde_json::to_string(&summary)?);
        anyhow::Ok(())
    })
}
