//! A stand-in OpenTelemetry collector for the traced row: it takes every
//! OTLP/HTTP export and answers 200 without decoding it, so that the row
//! measures what exporting costs wirehook, not what a collector costs.

use std::net::SocketAddr;
use std::sync::OnceLock;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

/// The collector's address, started on first use and kept for the run.
pub fn address() -> anyhow::Result<SocketAddr> {
    static STARTED: OnceLock<SocketAddr> = OnceLock::new();
    if let Some(addr) = STARTED.get() {
        return Ok(*addr);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the collector")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("collector".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the collector's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("collector");
                let app = Router::new().route("/v1/traces", post(|| async { StatusCode::OK }));
                axum::serve(listener, app).await.expect("collector");
            });
        })
        .context("starting the collector")?;
    Ok(*STARTED.get_or_init(|| addr))
}
