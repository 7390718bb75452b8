//! `fetch`'s own limits, each shown against a loopback server that sends
//! exactly what the test says and then nothing: a response larger than
//! `fetch_max_response_bytes` fails as soon as it is, and a request that
//! gets no more fails at `fetch_timeout_ms`, before the plugin's deadline.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::capabilities::{ask, error_of, probe_site};

/// A loopback server that, for each connection, answers with a header
/// announcing a large body, sends `sent` bytes of it and then holds the
/// connection open without sending more.
async fn stalled_sender(sent: usize) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&vec![b'x'; sent]).await;
            open.push(socket);
        }
    });
    addr
}

#[tokio::test]
async fn fetch_caps_response_size_without_waiting_for_the_rest() {
    // The rest of the body never comes: only the cap can end this fetch
    // before the (long) fetch timeout.
    let server = stalled_sender(5000).await;
    let daemon = probe_site(
        &format!("[plugin.probe]\nallow_http = [\"http://{server}\"]"),
        "fetch_max_response_bytes = 1000\nfetch_timeout_ms = 30000\ntimeout_ms = 60000",
    )
    .start();
    let (status, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://{server}/big"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        error_of(&reply).contains("larger than 1000 bytes"),
        "{reply}"
    );
}

#[tokio::test]
async fn fetch_times_out_before_the_plugin_deadline() {
    // Headers and nothing more: the endpoint never finishes.
    let server = stalled_sender(0).await;
    let daemon = probe_site(
        &format!("[plugin.probe]\nallow_http = [\"http://{server}\"]"),
        "fetch_timeout_ms = 100\ntimeout_ms = 60000",
    )
    .start();
    let (status, reply) = ask(
        &daemon,
        "/hooks/probe",
        &format!("fetch http://{server}/slow"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(error_of(&reply).contains("timed out"), "{reply}");
}
