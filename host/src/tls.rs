//! TLS termination with rustls. Certificates are read when the route table
//! is built (start, `wirehook check`, every reload) and handed to the
//! listener's [`Certificate`], so a renewed certificate is served from the
//! next reload on, and one that does not load fails that reload and leaves
//! the serving one in place.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{Problem, TlsConfig};
use crate::server::Handshake;

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
    // The listener speaks HTTP/1.1 only.
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

/// The certificate (and key) new connections are served with; a reload
/// swaps it. Cloning shares it.
#[derive(Clone)]
pub struct Certificate(Arc<ArcSwap<ServerConfig>>);

impl Certificate {
    pub fn new(loaded: Arc<ServerConfig>) -> Self {
        Self(Arc::new(ArcSwap::new(loaded)))
    }

    /// Serves `loaded` to connections accepted from now on.
    pub fn swap(&self, loaded: Arc<ServerConfig>) {
        self.0.store(loaded);
    }
}

/// Completes each connection's TLS handshake (in the connection's own
/// task, under `server.header_timeout_ms`) with the certificate current
/// when it was accepted.
pub struct TlsHandshake {
    certificate: Certificate,
}

impl TlsHandshake {
    pub fn new(certificate: Certificate) -> Self {
        Self { certificate }
    }
}

impl Handshake for TlsHandshake {
    type Io = TlsStream<TcpStream>;

    fn start(
        &mut self,
        tcp: TcpStream,
    ) -> impl Future<Output = std::io::Result<Self::Io>> + Send + 'static {
        TlsAcceptor::from(self.certificate.0.load_full()).accept(tcp)
    }
}
