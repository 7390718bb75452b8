//! Providers: each file proves that a request came from one provider and
//! decodes it into events, nothing else. Adding a provider is one new file
//! plus one line in [`REGISTRY`].

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{HeaderMap, Method};

use crate::config::RouteConfig;
use crate::event::Decoded;
use crate::secret::Secret;

mod goflow;
pub(crate) mod json;
mod token;
mod truora;

/// Every provider id and how to build it from its route.
const REGISTRY: &[(&str, Build)] = &[("goflow", goflow::build), ("truora", truora::build)];

type Build = fn(&ProviderConfig<'_>) -> Result<Box<dyn Provider>, ConfigIssue>;

/// The request as received, before anything trusts it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// Why a request was refused; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 401: the proof is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 400: the body is not what the provider sends.
    #[error("{0}")]
    BadRequest(String),
    /// 415: the content type is not what the provider sends.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl Rejection {
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::Unauthorized(reason.into())
    }

    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest(reason.into())
    }
}

/// Verify, then decode. Both look only at the request; neither has side
/// effects, so a rejected request leaves no trace but a log line.
pub trait Provider: Send + Sync + 'static {
    /// Proves the request came from the provider, over the raw bytes.
    /// Returns the JSON document that was proven (the body itself, or for
    /// a JWT its claims).
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Cow<'r, [u8]>, Rejection>;

    /// Decodes a verified document into one or more events.
    fn decode(&self, document: &[u8]) -> Result<Vec<Decoded>, Rejection>;
}

/// What a provider is built from: its route's config, secrets resolved.
pub struct ProviderConfig<'a> {
    pub route: &'a RouteConfig,
    pub secret: Option<Secret>,
}

impl ProviderConfig<'_> {
    /// The route's secret, or the issue that it has none.
    pub fn require_secret(&self) -> Result<Secret, ConfigIssue> {
        self.secret.clone().ok_or_else(|| ConfigIssue {
            field: "secret",
            reason: format!("the `{}` provider needs a secret", self.route.provider),
        })
    }
}

/// A route field a provider cannot work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub field: &'static str,
    pub reason: String,
}

/// The provider ids wirehook knows.
pub fn known() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(id, _)| *id)
}

/// Builds the provider of `config.route`.
pub fn build(config: &ProviderConfig<'_>) -> Result<Arc<dyn Provider>, ConfigIssue> {
    let id = config.route.provider.as_str();
    let (_, build) = REGISTRY
        .iter()
        .find(|(known, _)| *known == id)
        .ok_or_else(|| ConfigIssue {
            field: "provider",
            reason: format!(
                "unknown provider `{id}` (known: {})",
                known().collect::<Vec<_>>().join(", ")
            ),
        })?;
    build(config).map(Arc::from)
}

/// Accepts a missing content type or any JSON one (`application/json`,
/// `application/vnd.x+json`, with parameters).
pub(crate) fn require_json_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType(format!(
            "content type `{essence}` is not JSON"
        )))
    }
}
