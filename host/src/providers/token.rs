//! Shared-token proof, used by providers that document no signature: the
//! secret travels in a header (or, failing that, a `token` query
//! parameter) and is compared in constant time.

use axum::http::HeaderName;
use axum::http::header::AUTHORIZATION;

use super::{ConfigIssue, ProviderConfig, Rejection, Request};
use crate::secret::Secret;

/// Checks a shared token on each request.
#[derive(Debug)]
pub struct SharedToken {
    header: HeaderName,
    secret: Secret,
}

impl SharedToken {
    /// `header` from the route, else `default_header`.
    pub fn from_route(
        config: &ProviderConfig<'_>,
        default_header: HeaderName,
    ) -> Result<Self, ConfigIssue> {
        let header = match &config.route.header {
            Some(name) => HeaderName::try_from(name.as_str()).map_err(|_| ConfigIssue {
                field: "header",
                reason: format!("`{name}` is not a valid header name"),
            })?,
            None => default_header,
        };
        Ok(Self::new(header, config.require_secret()?))
    }

    pub fn new(header: HeaderName, secret: Secret) -> Self {
        Self { header, secret }
    }

    pub fn check(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let presented = match req.headers.get(&self.header) {
            Some(value) => self.strip_scheme(value.as_bytes()),
            None => query_token(req.query).ok_or_else(|| {
                Rejection::unauthorized(format!("missing `{}` header", self.header))
            })?,
        };
        if self.secret.matches(presented.trim_ascii()) {
            Ok(())
        } else {
            Err(Rejection::unauthorized("token does not match"))
        }
    }

    /// Flow engines send `Authorization: Token <secret>` (or `Bearer`);
    /// the scheme is not part of the secret.
    fn strip_scheme<'v>(&self, value: &'v [u8]) -> &'v [u8] {
        if self.header != AUTHORIZATION {
            return value;
        }
        for scheme in [&b"token "[..], b"bearer "] {
            if value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme) {
                return &value[scheme.len()..];
            }
        }
        value
    }
}

/// The raw bytes of the `token` query parameter, percent-decoding aside:
/// tokens are expected to be URL-safe.
fn query_token(query: &str) -> Option<&[u8]> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::as_bytes)
}
