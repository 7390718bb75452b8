//! Talking to systemd (`Type=notify`): READY=1 once routes and plugins are
//! loaded and the listener is bound, RELOADING=1 and READY=1 around every
//! reload, STOPPING=1 at shutdown, and watchdog pings when the unit sets
//! `WatchdogSec=`. Outside systemd (no `NOTIFY_SOCKET`) each call does
//! nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Routes and plugins are loaded and the listener is bound.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload begins; [`ready`] ends it, whether it succeeded or not.
pub fn reloading() {
    // systemd 253 and later want the monotonic time with RELOADING=1, to
    // tell this reload from an earlier one.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => {
            tracing::warn!("cannot read the monotonic clock: {e}");
            send(&[NotifyState::Reloading]);
        }
    }
}

/// Shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// When the unit has a watchdog, pings it at half its period from a task
/// on the async runtime, so that a wedged runtime stops the pings and
/// systemd restarts the service.
pub fn spawn_watchdog() {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(Duration::from_millis(1));
    tracing::debug!(
        every_ms = every.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}
