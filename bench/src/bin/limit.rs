//! `wirehook-limit`: the limit wirehook is measured against. The same
//! axum and hyper as wirehook's server, served the same way (one fallback
//! handler, connect info, the same body limit), reading the whole body and
//! answering 200 with a reply the size of order-status's. Nothing else.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// wirehook's default `server.max_body_bytes`.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    // The shape of wirehook's JSON "listening" line, so one reader serves both.
    eprintln!(
        "{}",
        serde_json::json!({ "message": "listening", "addr": listener.local_addr()?.to_string() })
    );
    let router = Router::new().fallback(handle);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn handle(ConnectInfo(_peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let body: Body = request.into_body();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(_) => (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"number":"CU001","status":"Shipped"}"#,
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}
