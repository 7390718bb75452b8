//! A loopback endpoint that holds every request until the test releases
//! it: a plugin that fetches it blocks exactly as long as the test wants,
//! so tests about calls in flight are driven by the test, not by a race
//! against a deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tokio::sync::{Mutex, Semaphore, mpsc};

use crate::capabilities::serve;
use crate::harness::within;

/// What the endpoint shares with the test.
struct Held {
    arrived: mpsc::UnboundedSender<usize>,
    released: AtomicUsize,
    gate: Semaphore,
}

pub struct Gate {
    pub addr: SocketAddr,
    held: Arc<Held>,
    arrivals: Mutex<mpsc::UnboundedReceiver<usize>>,
}

/// Answers `released` once the test has released one request.
async fn hold(State(held): State<Arc<Held>>) -> &'static str {
    let released = held.released.load(Ordering::SeqCst);
    held.arrived.send(released).unwrap();
    held.gate.acquire().await.unwrap().forget();
    "released"
}

impl Gate {
    pub async fn serve() -> Self {
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let held = Arc::new(Held {
            arrived,
            released: AtomicUsize::new(0),
            gate: Semaphore::new(0),
        });
        let addr = serve(
            Router::new()
                .route("/hold", get(hold))
                .with_state(held.clone()),
        )
        .await;
        Self {
            addr,
            held,
            arrivals: Mutex::new(arrivals),
        }
    }

    /// The origin to grant in `allow_http`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The probe command that fetches the endpoint (and so blocks).
    pub fn command(&self) -> String {
        format!("fetch http://{}/hold", self.addr)
    }

    /// Lets `requests` held requests (present or future) be answered.
    pub fn release(&self, requests: usize) {
        self.held.released.fetch_add(requests, Ordering::SeqCst);
        self.held.gate.add_permits(requests);
    }

    /// Waits for the next request to arrive; returns how many the test
    /// had released when it did.
    pub async fn arrival(&self, what: &str) -> usize {
        let mut arrivals = self.arrivals.lock().await;
        within(format!("{what} to reach the gate"), arrivals.recv())
            .await
            .expect("the gate's server stopped")
    }
}
