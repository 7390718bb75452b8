//! The load generator's engine: a fixed number of keep-alive HTTP/1.1
//! connections, each sending one signed request after another, a warm-up
//! that is not counted, then a timed window whose latencies go into an
//! HDR histogram.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::expect::Expect;
use crate::requests::Requests;

/// Latencies are recorded in microseconds up to a minute.
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long a request may wait for its whole answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// How one run is shaped.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The servers; connection `n` goes to `addrs[n % len]`.
    pub addrs: Vec<SocketAddr>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// What every answer must be.
    pub expect: Expect,
}

/// What one run measured: the JSON line the load generator prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub label: String,
    pub connections: usize,
    pub seconds: f64,
    /// Requests answered rightly inside the timed window.
    pub requests: u64,
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// Wrong answers (see [`Expect`]) and transport errors, over the
    /// whole run.
    pub errors: u64,
    /// Of the errors, answers with the wrong status or body.
    #[serde(default)]
    pub wrong_answers: u64,
    /// The first wrong answer, to say what was wrong.
    #[serde(default)]
    pub first_wrong: Option<String>,
    /// Requests answered over the whole run, warm-up included: what the
    /// target's CPU time over the run is divided by.
    #[serde(default)]
    pub answered_in_run: u64,
    /// Answers by HTTP status over the timed window ("io" for transport
    /// errors, "wrong N" for answers with status N and a wrong status or
    /// body).
    pub statuses: BTreeMap<String, u64>,
}

/// One connection's tally.
struct Tally {
    latencies: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    errors: u64,
    wrong: u64,
    first_wrong: Option<String>,
    answered: u64,
}

impl Tally {
    fn new() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("static histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
            wrong: 0,
            first_wrong: None,
            answered: 0,
        }
    }
}

/// Runs the load and measures it.
pub async fn run(label: &str, shape: &Shape, requests: Arc<Requests>) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let window_start = start + shape.warmup;
    let end = window_start + shape.duration;
    let tasks: Vec<_> = (0..shape.connections)
        .map(|connection| {
            let requests = requests.clone();
            let addr = shape.addrs[connection % shape.addrs.len()];
            let expect = shape.expect;
            tokio::spawn(async move {
                drive(addr, expect, connection, &requests, window_start, end).await
            })
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        let tally = task.await.context("a connection task panicked")??;
        total.latencies.add(&tally.latencies)?;
        total.errors += tally.errors;
        total.wrong += tally.wrong;
        total.first_wrong = total.first_wrong.or(tally.first_wrong);
        total.answered += tally.answered;
        for (status, n) in tally.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
    }
    let seconds = shape.duration.as_secs_f64();
    let answered = total.latencies.len();
    Ok(Outcome {
        label: label.to_owned(),
        connections: shape.connections,
        seconds,
        requests: answered,
        rps: answered as f64 / seconds,
        p50_us: total.latencies.value_at_quantile(0.5),
        p99_us: total.latencies.value_at_quantile(0.99),
        p999_us: total.latencies.value_at_quantile(0.999),
        max_us: total.latencies.max(),
        errors: total.errors,
        wrong_answers: total.wrong,
        first_wrong: total.first_wrong,
        answered_in_run: total.answered,
        statuses: total.statuses,
    })
}

/// One connection: sends until `end`, counting what completes inside the
/// window. A broken connection is counted as an error and reopened.
async fn drive(
    addr: SocketAddr,
    expect: Expect,
    connection: usize,
    requests: &Requests,
    window_start: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new();
    let mut sequence = 0u64;
    'connect: while Instant::now() < end {
        let stream = tokio::time::timeout(ANSWER_WAIT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("no connection within {ANSWER_WAIT:?}"))
            .and_then(|connected| Ok(connected?))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(conn);
        loop {
            let sent = Instant::now();
            if sent >= end {
                break 'connect;
            }
            let request = build(requests, connection, sequence, addr)?;
            let order = requests.order(sequence);
            sequence += 1;
            // The status, and whether the answer was the right one.
            let exchange = async {
                let response = sender.send_request(request).await.ok()?;
                let status = response.status().as_u16();
                // The whole body, as a provider's client would read it.
                let body = response.into_body().collect().await.ok()?;
                Some((status, expect.check(order, status, &body.to_bytes())))
            };
            // No answer in time is a broken connection: the run ends.
            let answer = tokio::time::timeout(ANSWER_WAIT, exchange)
                .await
                .ok()
                .flatten();
            let done = Instant::now();
            let broken = answer.is_none();
            if !broken {
                tally.answered += 1;
            }
            let right = matches!(answer, Some((_, Ok(()))));
            let key = match answer {
                Some((status, Ok(()))) => status.to_string(),
                Some((status, Err(wrong))) => {
                    tally.errors += 1;
                    tally.wrong += 1;
                    tally.first_wrong.get_or_insert(wrong);
                    format!("wrong {status}")
                }
                None => {
                    tally.errors += 1;
                    "io".to_owned()
                }
            };
            if sent >= window_start && done <= end {
                // Throughput and latency are of right answers only: a
                // wrong one is no faster for being counted.
                if right {
                    let micros = done.duration_since(sent).as_micros() as u64;
                    tally.latencies.record(micros.clamp(1, MAX_LATENCY_US))?;
                }
                *tally.statuses.entry(key).or_default() += 1;
            }
            if broken {
                continue 'connect;
            }
        }
    }
    Ok(tally)
}

fn build(
    requests: &Requests,
    connection: usize,
    sequence: u64,
    addr: SocketAddr,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let signed = requests.next(connection, sequence, SystemTime::now())?;
    let mut builder =
        Request::post(requests.path(sequence)).header(hyper::header::HOST, addr.to_string());
    for (name, value) in &signed.headers {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(Bytes::from(signed.body)))?)
}

/// Milliseconds since the Unix epoch, for unique ids across runs.
pub fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
