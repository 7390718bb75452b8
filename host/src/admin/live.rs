//! `GET /api/events/stream`: the console's live list, as server-sent
//! events. The stream takes the listing's filters; it sends the page
//! (newest first, as `GET /api/events` returns it) at once, then again
//! whenever it changes: an event arrives, or one on the page changes
//! status or attempts. The browser's `EventSource` reconnects by itself
//! when the connection drops.
//!
//! The page is read again when the store says it wrote something (the
//! embedded store tells its readers after each commit), and at least
//! every [`RECHECK`], for what other processes write (a shared database,
//! `wirehook replay` from the CLI). One listing of a page, by an index,
//! costs little; a page unchanged sends nothing.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use tokio::sync::mpsc;

use super::api::filter_of;
use super::{Admin, authorize};
use crate::store::{Filter, Record};

/// How long a page goes unread at most while the stream is open.
const RECHECK: Duration = Duration::from_secs(1);

/// A comment sent after this long without a page, so that proxies keep
/// the connection open and a closed one is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) async fn stream(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = authorize(&admin, &request, true) {
        return refused;
    }
    let filter = match filter_of(&request) {
        Ok(filter) => filter,
        Err(refused) => return refused,
    };
    // A little room: a slow reader holds the feed back, not the store.
    let (frames, body) = mpsc::channel(4);
    tokio::spawn(feed(admin, filter, frames));
    let mut response = Body::new(Frames(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What of a record a page's change is seen by.
fn state(records: &[Record]) -> Vec<(i64, &'static str, u32, u64)> {
    records
        .iter()
        .map(|r| (r.id, r.status.as_str(), r.attempts, r.updated_at_ms))
        .collect()
}

/// Sends `filter`'s page whenever it changes, until the client goes or
/// the listener closes.
async fn feed(admin: Arc<Admin>, filter: Filter, frames: mpsc::Sender<Bytes>) {
    let mut closing = admin.closing.subscribe();
    let mut written = admin.store.changes();
    let mut last = None;
    let mut quiet = Duration::ZERO;
    loop {
        let frame = match admin.store.list(filter.clone()).await {
            Ok(records) => {
                let now = state(&records);
                if last.as_ref() == Some(&now) {
                    None
                } else {
                    last = Some(now);
                    let page = super::api::as_page(records, filter.limit);
                    Some(format!("event: page\ndata: {page}\n\n"))
                }
            }
            // The client keeps what it shows, and the next check tries
            // again.
            Err(e) => {
                tracing::warn!("admin: live list: {e}");
                None
            }
        };
        let frame = match frame {
            Some(frame) => {
                quiet = Duration::ZERO;
                Some(frame)
            }
            None if quiet >= KEEP_ALIVE => {
                quiet = Duration::ZERO;
                Some(": keep-alive\n\n".to_owned())
            }
            None => None,
        };
        if let Some(frame) = frame
            && frames.send(Bytes::from(frame)).await.is_err()
        {
            return;
        }
        let started = tokio::time::Instant::now();
        tokio::select! {
            () = tokio::time::sleep(RECHECK) => {}
            () = async {
                // A writer gone leaves the timer.
                let changed = match &mut written {
                    Some(written) => written.changed().await.is_ok(),
                    None => false,
                };
                if !changed {
                    std::future::pending::<()>().await;
                }
            } => {}
            _ = closing.wait_for(|closing| *closing) => return,
            () = frames.closed() => return,
        }
        quiet += started.elapsed();
    }
}

/// The stream's body: the frames [`feed`] sends, as they come.
struct Frames(mpsc::Receiver<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|data| Ok(Frame::data(data))))
    }
}
