//! A daemon's background work on PostgreSQL: listening for events other
//! instances queued, and renewing the leases of the events it holds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::tls::MakeRustlsConnect;
use super::{CHANNEL, bounded, pool_error};
use crate::store::{StoreError, UnixMs};

/// How long the listener waits before connecting again after losing its
/// connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// The tasks, aborted when the store is dropped.
pub(super) struct Tasks(Vec<tokio::task::AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Tasks {
    pub(super) fn none() -> Self {
        Self(Vec::new())
    }

    pub(super) fn start(
        config: tokio_postgres::Config,
        tls: MakeRustlsConnect,
        pool: Pool,
        holder: String,
        lease_ms: u64,
        held: Arc<Mutex<HashSet<i64>>>,
        queued: Arc<Notify>,
    ) -> Self {
        let listen = tokio::spawn(listen(config, tls, queued));
        let renew = tokio::spawn(renew(pool, holder, lease_ms, held));
        Self(vec![listen.abort_handle(), renew.abort_handle()])
    }
}

/// Wakes `queued` at every notification on [`CHANNEL`], and once after
/// each (re)connection, for what was queued while it was not listening.
async fn listen(config: tokio_postgres::Config, tls: MakeRustlsConnect, queued: Arc<Notify>) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let listening = async { client.batch_execute(&format!("LISTEN {CHANNEL}")).await };
                // The connection is driven by polling its messages, which
                // also carries the LISTEN statement through.
                let mut listening = std::pin::pin!(listening);
                let mut subscribed = false;
                loop {
                    let message = std::future::poll_fn(|cx| {
                        if !subscribed
                            && let std::task::Poll::Ready(result) = listening.as_mut().poll(cx)
                        {
                            subscribed = true;
                            if let Err(e) = result {
                                tracing::warn!("store: cannot listen for queued events: {e}");
                            }
                            queued.notify_waiters();
                        }
                        connection.poll_message(cx)
                    })
                    .await;
                    match message {
                        Some(Ok(AsyncMessage::Notification(_))) => {
                            queued.notify_waiters();
                            queued.notify_one();
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(
                                "store: lost the connection listening for queued events: {e}"
                            );
                            break;
                        }
                        None => break,
                    }
                }
            }
            Err(e) => tracing::debug!("store: cannot connect to listen for queued events: {e}"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// Renews the leases of the events in `held`, at a third of the lease.
async fn renew(pool: Pool, holder: String, lease_ms: u64, held: Arc<Mutex<HashSet<i64>>>) {
    let every = Duration::from_millis((lease_ms / 3).max(100));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ids: Vec<i64> = held
            .lock()
            .expect("held ids poisoned")
            .iter()
            .copied()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let until = UnixMs::now().plus_ms(lease_ms).as_i64();
        let renewed = bounded(async {
            let client = pool.get().await.map_err(pool_error)?;
            Ok::<_, StoreError>(
                client
                    .execute(
                        "UPDATE events SET lease_until_ms = $1
                         WHERE id = ANY($2) AND status = 'running' AND holder = $3",
                        &[&until, &ids, &holder],
                    )
                    .await?,
            )
        })
        .await;
        if let Err(e) = renewed {
            tracing::warn!(events = ids.len(), "store: cannot renew leases: {e}");
        }
    }
}
