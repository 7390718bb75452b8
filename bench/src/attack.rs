//! The attack the "under attack" row runs beside its load: clients with no
//! credentials that try to slow wirehook down. Slow clients hold
//! connections open (headers a byte at a time; a large body begun and then
//! stalled) and open another whenever the daemon closes one; bad-signature
//! clients send, at a fixed rate each, OneRoute requests with a wrong HMAC
//! over about 1 MiB of JSON (the most a refusal can be made to cost) and
//! goflow requests with a wrong token. Everything goes to one loopback
//! address, with a fixed number of connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use forged::{Prepared, goflow_request, oneroute_request};

mod forged;

/// How long a slow client waits between two bytes.
const TRICKLE: Duration = Duration::from_secs(1);
/// How long a slow client waits before opening another connection once
/// the daemon closed one: the attack is slow connections, not a flood.
const REOPEN: Duration = Duration::from_millis(100);
/// The part of its body a stalled-body client sends before stalling.
const STALLED_PREFIX: usize = 64 * 1024;
/// The body a stalled-body client announces: wirehook's default
/// `server.max_body_bytes`, so that only its slowness can refuse it.
const STALLED_LENGTH: usize = 1024 * 1024;
/// How long a bad-signature client waits for an answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// How many attackers of each kind, and how fast.
#[derive(Debug, Clone, clap::Args)]
pub struct Attack {
    /// Connections sending their headers a byte a second.
    #[arg(long, default_value_t = 200)]
    pub slow_headers: usize,
    /// Connections that send 64 KiB of a 1 MiB body, then a byte a second.
    #[arg(long, default_value_t = 100)]
    pub stalled_bodies: usize,
    /// Clients sending OneRoute requests with a wrong HMAC over ~1 MiB.
    #[arg(long, default_value_t = 4)]
    pub oneroute_clients: usize,
    /// Requests a second each OneRoute client sends, at most.
    #[arg(long, default_value_t = 5.0)]
    pub oneroute_rate: f64,
    /// Clients sending goflow requests with a wrong token.
    #[arg(long, default_value_t = 4)]
    pub goflow_clients: usize,
    /// Requests a second each goflow client sends, at most.
    #[arg(long, default_value_t = 250.0)]
    pub goflow_rate: f64,
    /// The goflow route's path.
    #[arg(long, default_value = "/hooks/orders")]
    pub goflow_path: String,
    /// The OneRoute route's path.
    #[arg(long, default_value = "/hooks/oneroute")]
    pub oneroute_path: String,
}

/// What the attack did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub slow_headers: SlowTally,
    pub stalled_bodies: SlowTally,
    pub oneroute: RequestTally,
    pub goflow: RequestTally,
    /// The attack's own CPU time and how long it ran, in seconds, as the
    /// runner reads them from outside: its share of the cores is taken
    /// from the load and the daemon.
    #[serde(default)]
    pub cpu_secs: f64,
    #[serde(default)]
    pub wall_secs: f64,
}

/// One kind of slow client's connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlowTally {
    /// Connections the attack keeps open at once.
    pub clients: usize,
    /// Connections opened over the attack.
    pub opened: u64,
    /// Of those, how many the daemon closed (or answered) before the end.
    pub closed_by_daemon: u64,
    /// Connections the daemon refused or reset before they were used.
    pub refused: u64,
}

/// One kind of bad-signature client's requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestTally {
    pub clients: usize,
    pub sent: u64,
    /// Answers by status ("io" for a broken connection or no answer in
    /// time).
    pub statuses: BTreeMap<String, u64>,
}

impl RequestTally {
    /// Answers that let a request without credentials through.
    pub fn accepted(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }
}

/// Counters the slow clients share.
#[derive(Default)]
struct SlowCounters {
    opened: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
}

impl SlowCounters {
    fn tally(&self, clients: usize) -> SlowTally {
        SlowTally {
            clients,
            opened: self.opened.load(Ordering::Relaxed),
            closed_by_daemon: self.closed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// A running attack: [`Running::stop`] ends it and says what it did.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<Part>,
    attack: Attack,
    headers: Arc<SlowCounters>,
    bodies: Arc<SlowCounters>,
}

/// What one bad-signature client reports when it stops.
enum Part {
    Slow,
    Requests { oneroute: bool, tally: RequestTally },
}

impl Attack {
    /// Starts every attacker against `addr`; returns once every slow
    /// connection has been opened once, so that the load that follows
    /// meets the whole attack. `goflow_token` is the route's token, which
    /// the goflow clients get wrong.
    pub async fn start(&self, addr: SocketAddr, goflow_token: &str) -> anyhow::Result<Running> {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let headers = Arc::new(SlowCounters::default());
        let bodies = Arc::new(SlowCounters::default());
        let host = addr.to_string();
        let slow_headers = Arc::new(format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\n",
            self.goflow_path
        ));
        let stalled_body = Arc::new(format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/json\r\nContent-Length: {STALLED_LENGTH}\r\n\r\n{}",
            self.goflow_path,
            " ".repeat(STALLED_PREFIX)
        ));
        let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<()>(1024);
        for (count, prefix, trickle, counters) in [
            (
                self.slow_headers,
                &slow_headers,
                b"X-a: b\r\n" as &[u8],
                &headers,
            ),
            (self.stalled_bodies, &stalled_body, b" " as &[u8], &bodies),
        ] {
            for _ in 0..count {
                let slow = Slow {
                    addr,
                    prefix: prefix.clone(),
                    trickle,
                    counters: counters.clone(),
                };
                let (stopped, opened) = (stopped.clone(), opened_tx.clone());
                tasks.spawn(async move {
                    slow.run(stopped, opened).await;
                    Part::Slow
                });
            }
        }
        drop(opened_tx);
        let oneroute = Arc::new(oneroute_request(&host, &self.oneroute_path)?);
        for _ in 0..self.oneroute_clients {
            let client = Client {
                addr,
                request: oneroute.clone(),
                every: Duration::from_secs_f64(1.0 / self.oneroute_rate),
            };
            let stopped = stopped.clone();
            tasks.spawn(async move {
                let tally = client.run(stopped).await;
                Part::Requests {
                    oneroute: true,
                    tally,
                }
            });
        }
        let goflow = Arc::new(goflow_request(&host, &self.goflow_path, goflow_token)?);
        for _ in 0..self.goflow_clients {
            let client = Client {
                addr,
                request: goflow.clone(),
                every: Duration::from_secs_f64(1.0 / self.goflow_rate),
            };
            let stopped = stopped.clone();
            tasks.spawn(async move {
                let tally = client.run(stopped).await;
                Part::Requests {
                    oneroute: false,
                    tally,
                }
            });
        }
        // Each slow client says once that its first connection is open.
        let slow = self.slow_headers + self.stalled_bodies;
        let first_opened = async {
            for _ in 0..slow {
                opened_rx.recv().await.context("a slow client stopped")?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(30), first_opened)
            .await
            .map_err(|_| anyhow!("the slow connections did not all open within 30 s"))??;
        Ok(Running {
            stop,
            tasks,
            attack: self.clone(),
            headers,
            bodies,
        })
    }
}

impl Running {
    /// Stops every attacker (each within a second or its answer wait) and
    /// says what the attack did.
    pub async fn stop(mut self) -> anyhow::Result<Summary> {
        let _ = self.stop.send(true);
        let mut summary = Summary {
            oneroute: RequestTally {
                clients: self.attack.oneroute_clients,
                ..RequestTally::default()
            },
            goflow: RequestTally {
                clients: self.attack.goflow_clients,
                ..RequestTally::default()
            },
            ..Summary::default()
        };
        let all = async {
            while let Some(part) = self.tasks.join_next().await {
                if let Part::Requests { oneroute, tally } = part.context("an attacker panicked")? {
                    let total = if oneroute {
                        &mut summary.oneroute
                    } else {
                        &mut summary.goflow
                    };
                    total.sent += tally.sent;
                    for (status, n) in tally.statuses {
                        *total.statuses.entry(status).or_default() += n;
                    }
                }
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(ANSWER_WAIT + Duration::from_secs(5), all)
            .await
            .map_err(|_| anyhow!("the attackers did not stop"))??;
        // Counted after every slow client has stopped and closed its own.
        summary.slow_headers = self.headers.tally(self.attack.slow_headers);
        summary.stalled_bodies = self.bodies.tally(self.attack.stalled_bodies);
        Ok(summary)
    }
}

/// A client that holds a connection open by sending it `prefix` and then
/// a `trickle` byte at a time, and opens another when the daemon closes it.
struct Slow {
    addr: SocketAddr,
    prefix: Arc<String>,
    trickle: &'static [u8],
    counters: Arc<SlowCounters>,
}

impl Slow {
    async fn run(self, mut stopped: watch::Receiver<bool>, opened: tokio::sync::mpsc::Sender<()>) {
        let mut first = Some(opened);
        while !*stopped.borrow() {
            let connect = tokio::time::timeout(ANSWER_WAIT, TcpStream::connect(self.addr));
            let stream = match connect.await {
                Ok(Ok(stream)) => stream,
                _ => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    if pause(&mut stopped, REOPEN).await {
                        break;
                    }
                    continue;
                }
            };
            self.counters.opened.fetch_add(1, Ordering::Relaxed);
            let (mut read, mut write) = stream.into_split();
            // A daemon that reads nothing can hold this write: the stop
            // must still end it.
            let mut closed = tokio::select! {
                written = write.write_all(self.prefix.as_bytes()) => written.is_err(),
                _ = stopped.changed() => return,
            };
            if let Some(opened) = first.take() {
                let _ = opened.send(()).await;
            }
            let mut next = 0;
            let mut buf = [0u8; 512];
            while !closed {
                tokio::select! {
                    // Anything the daemon sends (a 408, a close) ends it.
                    _ = read.read(&mut buf) => closed = true,
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(TRICKLE) => {
                        let byte = [self.trickle[next % self.trickle.len()]];
                        next += 1;
                        closed = write.write_all(&byte).await.is_err();
                    }
                }
            }
            self.counters.closed.fetch_add(1, Ordering::Relaxed);
            if pause(&mut stopped, REOPEN).await {
                break;
            }
        }
    }
}

/// Waits `how_long`; true when the attack stopped meanwhile.
async fn pause(stopped: &mut watch::Receiver<bool>, how_long: Duration) -> bool {
    tokio::select! {
        _ = stopped.changed() => true,
        _ = tokio::time::sleep(how_long) => *stopped.borrow(),
    }
}

/// A bad-signature client: one keep-alive connection (another when the
/// daemon closes it), a request every `every` at most.
struct Client {
    addr: SocketAddr,
    request: Arc<Prepared>,
    every: Duration,
}

impl Client {
    async fn run(self, mut stopped: watch::Receiver<bool>) -> RequestTally {
        let mut tally = RequestTally::default();
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sender = None;
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = ticks.tick() => {}
            }
            if *stopped.borrow() {
                break;
            }
            if sender.is_none() {
                sender = connect(self.addr).await;
            }
            let Some(open) = sender.as_mut() else {
                *tally.statuses.entry("io".to_owned()).or_default() += 1;
                continue;
            };
            tally.sent += 1;
            let answer = tokio::time::timeout(ANSWER_WAIT, send(open, &self.request)).await;
            let key = match answer {
                Ok(Some(status)) => status.to_string(),
                _ => {
                    sender = None;
                    "io".to_owned()
                }
            };
            *tally.statuses.entry(key).or_default() += 1;
        }
        tally
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = tokio::time::timeout(ANSWER_WAIT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// Sends one request and reads its whole answer; its status, or `None`
/// when the connection broke.
async fn send(sender: &mut Sender, prepared: &Prepared) -> Option<u16> {
    sender.ready().await.ok()?;
    let mut builder = Request::post(&prepared.path);
    for (name, value) in &prepared.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(prepared.body.clone())).ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_2xx_to_an_attacker_counts_as_let_through() {
        let tally = RequestTally {
            clients: 1,
            sent: 6,
            statuses: [("401", 3), ("200", 1), ("204", 1), ("io", 1)]
                .into_iter()
                .map(|(status, n)| (status.to_owned(), n))
                .collect(),
        };
        assert_eq!(tally.accepted(), 2);
    }
}
