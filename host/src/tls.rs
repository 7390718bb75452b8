//! TLS termination with rustls. Certificates are read when the route table
//! is built (start, `wirehook check`, every reload), so a renewed
//! certificate is served from the next reload on, and one that does not
//! load fails that reload and leaves the serving one in place.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{Problem, TlsConfig};
use crate::routes::RouteTable;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `server.tls`'s certificate chain and key.
pub fn load(config: &TlsConfig) -> Result<Arc<ServerConfig>, Problem> {
    let cert_path = crate::secret::expand_credentials_dir(&config.cert);
    let key_path = crate::secret::expand_credentials_dir(&config.key);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_problem("server.tls.cert", &cert_path, e))?;
    if chain.is_empty() {
        return Err(Problem::new(
            "server.tls.cert",
            format!("{} holds no certificate", cert_path.display()),
        ));
    }
    // The error names the file, never its contents.
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| pem_problem("server.tls.key", &key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| Problem::new("server.tls", e.to_string()))?;
    // axum here speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn pem_problem(key: &str, path: &Path, e: rustls::pki_types::pem::Error) -> Problem {
    let reason = match e {
        rustls::pki_types::pem::Error::Io(e) => format!("cannot read {}: {e}", path.display()),
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{} holds no PEM item of the right kind", path.display())
        }
        other => format!("{} is not valid PEM: {other}", path.display()),
    };
    Problem::new(key, reason)
}

/// Accepts TCP connections and completes their TLS handshakes in tasks
/// of their own, so that a slow client holds up no other. Each handshake
/// uses the certificate of the route table current at that moment.
pub struct TlsListener {
    tcp: TcpListener,
    routes: Arc<ArcSwap<RouteTable>>,
    /// The last certificate seen; kept if a reload drops `server.tls`,
    /// which needs a restart to take effect.
    current: Arc<ServerConfig>,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub fn new(
        tcp: TcpListener,
        routes: Arc<ArcSwap<RouteTable>>,
        current: Arc<ServerConfig>,
    ) -> Self {
        Self {
            tcp,
            routes,
            current,
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        if let Some(tls) = &self.routes.load().tls {
            self.current = tls.clone();
        }
        let acceptor = TlsAcceptor::from(self.current.clone());
        self.handshakes.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Some((stream, peer)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    None
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: pause as
                        // axum's own listener does, rather than spin.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
