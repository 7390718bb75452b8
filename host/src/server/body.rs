//! A request body as the listener hands it on: cut when it stalls or
//! comes slower than `server.body_min_bytes_per_sec` once
//! `server.body_timeout_ms` has passed, and counted against
//! `server.max_body_bytes_in_flight` as its bytes arrive.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use super::door::{BodyBytes, Refusal};

/// Why a body was cut; the handler reading it answers with [`BodyCut::status`].
#[derive(Debug, thiserror::Error)]
pub enum BodyCut {
    #[error("request body too slow")]
    TooSlow,
    #[error("too many request body bytes in flight; retry later")]
    Busy,
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

impl BodyCut {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyCut::TooSlow => StatusCode::REQUEST_TIMEOUT,
            BodyCut::Busy => StatusCode::SERVICE_UNAVAILABLE,
            BodyCut::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether a body was cut, for the listener once the handler is done:
/// the rest of such a body was never read, so the connection closes.
#[derive(Default)]
pub struct Outcome {
    too_slow: AtomicBool,
    busy: AtomicBool,
}

impl Outcome {
    pub fn cut(&self) -> Option<Refusal> {
        if self.too_slow.load(Ordering::Relaxed) {
            Some(Refusal::BodyTimeout)
        } else if self.busy.load(Ordering::Relaxed) {
            Some(Refusal::BodyBytesInFlight)
        } else {
            None
        }
    }
}

/// See the module doc.
pub struct GuardedBody {
    inner: Incoming,
    bytes: Arc<BodyBytes>,
    outcome: Arc<Outcome>,
    started: Instant,
    grace: Duration,
    min_rate: u64,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl GuardedBody {
    pub fn new(
        inner: Incoming,
        bytes: Arc<BodyBytes>,
        outcome: Arc<Outcome>,
        grace: Duration,
        min_rate: u64,
    ) -> Self {
        let started = Instant::now();
        Self {
            inner,
            bytes,
            outcome,
            started,
            grace,
            min_rate,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + grace)),
        }
    }

    /// By when the next bytes must come: the body must have kept up
    /// `min_rate` on average since the grace ran out.
    fn next_deadline(&self) -> Instant {
        let earned = match self.min_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs_f64(self.received as f64 / rate as f64),
        };
        self.started + self.grace + earned
    }

    fn cut(&self, cut: BodyCut) -> Poll<Option<Result<Frame<Bytes>, BodyCut>>> {
        let flag = match cut {
            BodyCut::TooSlow => &self.outcome.too_slow,
            _ => &self.outcome.busy,
        };
        flag.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(cut)))
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = BodyCut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let beyond = usize::try_from(this.received)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(this.bytes.held());
                    if !this.bytes.grow(beyond) {
                        return this.cut(BodyCut::Busy);
                    }
                    let deadline = this.next_deadline();
                    this.deadline.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyCut::Read(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.deadline.as_mut().poll(cx));
                this.cut(BodyCut::TooSlow)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
