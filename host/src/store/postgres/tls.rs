//! TLS to PostgreSQL with rustls, as the URL's `sslmode` asks, with
//! libpq's meanings: `disable` never encrypts; `prefer` (the default)
//! encrypts when the server offers TLS; `require` refuses a server
//! without TLS; `verify-ca` also checks the server's certificate against
//! the trusted roots; `verify-full` also checks that it names the host.
//! As in libpq, `prefer` and `require` trust any certificate unless a CA
//! file is given (`[storage] ca_file`), which makes them `verify-ca`.
//! The roots are that file's certificates, or else Mozilla's
//! (webpki-roots), so a private CA needs `ca_file`.
//!
//! tokio-postgres knows `disable`, `prefer` and `require` only: the
//! `verify-…` modes reach it as `require`, with the checks in the
//! certificate verifier.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as PgSslMode;
pub use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Parses a connection URL (`postgres://…` or key=value form) and its
/// `sslmode`. The error never quotes the URL: it may hold a password.
pub fn parse_url(url: &str) -> Result<(tokio_postgres::Config, SslMode), String> {
    let mut rest = url.to_owned();
    let mut mode = None;
    if let Some(range) = sslmode_value(url) {
        let (parsed, as_pg) = match &url[range.clone()] {
            "disable" => (SslMode::Disable, "disable"),
            "prefer" => (SslMode::Prefer, "prefer"),
            "require" => (SslMode::Require, "require"),
            "verify-ca" => (SslMode::VerifyCa, "require"),
            "verify-full" => (SslMode::VerifyFull, "require"),
            _ => {
                return Err(
                    "sslmode must be disable, prefer, require, verify-ca or verify-full".into(),
                );
            }
        };
        rest.replace_range(range, as_pg);
        mode = Some(parsed);
    }
    let config: tokio_postgres::Config = rest
        .parse()
        .map_err(|_| "is not a PostgreSQL connection URL".to_owned())?;
    let mode = mode.unwrap_or(match config.get_ssl_mode() {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Require => SslMode::Require,
        _ => SslMode::Prefer,
    });
    Ok((config, mode))
}

/// Where the value of the last `sslmode=` parameter is, in either form:
/// after `?`, `&` or white space, up to `&` or white space.
fn sslmode_value(url: &str) -> Option<std::ops::Range<usize>> {
    const KEY: &str = "sslmode=";
    url.match_indices(KEY)
        .filter(|(at, _)| {
            url[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| c == '?' || c == '&' || c.is_whitespace())
        })
        .map(|(at, _)| {
            let start = at + KEY.len();
            let len = url[start..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(url.len() - start);
            start..start + len
        })
        .last()
}

/// The connector for `mode`, trusting `ca_file`'s certificates if given.
/// The error names the file, never its contents.
pub fn connector(mode: SslMode, ca_file: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("storage.ca_file: cannot read {}: {e}", path.display()))?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "storage.ca_file: {} holds no certificate",
                    path.display()
                ));
            }
            roots
        }
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("storage.ca_file: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, ca_file) {
        (SslMode::VerifyFull, _) => webpki,
        (SslMode::VerifyCa, _) | (_, Some(_)) => Arc::new(AnyName(webpki)),
        (_, None) => Arc::new(AnyCertificate(provider.clone())),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("storage: TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `verify-ca`: a certificate from a trusted root, for any host name.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA file: encrypted, to whichever
/// server answers (libpq's meaning); the handshake is still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_from_either_form_and_verify_modes_reach_the_client_as_require() {
        let (config, mode) =
            parse_url("postgres://u:p@db.example/w?application_name=a&sslmode=verify-full")
                .unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(config.get_ssl_mode(), PgSslMode::Require);
        assert_eq!(config.get_application_name(), Some("a"));
        let (config, mode) = parse_url("host=db.example sslmode=verify-ca dbname=w").unwrap();
        assert_eq!(mode, SslMode::VerifyCa);
        assert_eq!(config.get_ssl_mode(), PgSslMode::Require);
        assert_eq!(config.get_dbname(), Some("w"));
        assert_eq!(
            parse_url("host=h sslmode=disable").unwrap().1,
            SslMode::Disable
        );
        assert_eq!(parse_url("postgres://h/w").unwrap().1, SslMode::Prefer);
        // A password that spells the key is not the key.
        let (_, mode) = parse_url("postgres://u:xsslmode=disable@h/w").unwrap();
        assert_eq!(mode, SslMode::Prefer);
        let refused = parse_url("postgres://u:hunter2@h/w?sslmode=allow").unwrap_err();
        assert!(refused.starts_with("sslmode must be"), "{refused}");
        assert!(!refused.contains("hunter2"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let refused = connector(SslMode::VerifyFull, Some(&path)).err().unwrap();
        assert!(refused.starts_with("storage.ca_file"), "{refused}");
        assert!(connector(SslMode::VerifyFull, None).is_ok());
    }
}
