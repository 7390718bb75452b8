//! The `fetch` capability: outbound HTTP for plugins, to granted origins
//! only.
//!
//! A custom host function rather than `wasi:http/outgoing-handler`: the
//! allowlist, the address policy and the limits apply to one small
//! request/response record, and plugins in every language get the same
//! simple call instead of WASI HTTP's resources and streams.
//!
//! The rules, in order: the URL's origin must match an `allow_http` entry
//! ([`crate::origin`]); a named host must resolve only to public addresses
//! ([`address`]) — loopback, private, link-local (metadata) and the other
//! special-purpose ranges are refused even when the name is granted — and
//! the connection uses exactly the addresses that were checked; an
//! IP-literal entry is an explicit grant of that address and port. The
//! clients never use a proxy, whatever `HTTP_PROXY`, `HTTPS_PROXY` or
//! `ALL_PROXY` say: a proxy would resolve the name itself, past the check.
//! A plugin may not set `Host`, `Content-Length` or hop-by-hop headers.
//!
//! Redirects (301, 302, 303, 307, 308) are followed only to granted
//! origins, [`MAX_REDIRECTS`] hops at most, the way browsers do (RFC 9110
//! §15.4, Fetch): 303 turns any method but HEAD into a GET without body;
//! 301 and 302 turn a POST into a GET without body and keep other methods;
//! 307 and 308 keep method and body. Dropping the body drops the headers
//! that describe it. A hop to another origin drops `Authorization` and
//! `Cookie`. Every response is size-capped.

use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::Resolve;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tracing::Instrument as _;
use tracing::field::Empty;

mod address;

#[cfg(test)]
mod tests;

use crate::origin::{HostPattern, Origin};
use crate::telemetry::{self, TARGET};
use address::is_public;

/// Redirect hops followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Headers a plugin may not set: the connection's own (RFC 9110 §7.6.1)
/// and the ones that say where and how much (`Host`, `Content-Length`),
/// which the client writes from the URL and the body.
const RESERVED_HEADERS: [HeaderName; 11] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers that describe a body, dropped with it (Fetch's request-body
/// header names).
const BODY_HEADERS: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
];

/// Credentials that stay with the origin they were meant for.
const CREDENTIAL_HEADERS: [HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

/// Why a fetch was refused or failed; shown to the plugin and in the log.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad URL `{url}`: {reason}")]
    Url {
        url: String,
        reason: url::ParseError,
    },
    #[error("bad method `{0}`")]
    Method(String),
    #[error("bad header name `{}`", .0.escape_debug())]
    HeaderName(String),
    #[error("header `{0}` is set by wirehook, not by plugins")]
    ReservedHeader(HeaderName),
    #[error("bad value for header `{0}`")]
    HeaderValue(HeaderName),
    /// The URL's origin, which no `allow_http` entry permits.
    #[error("`{0}` is not in allow_http")]
    NotGranted(String),
    /// The connection or the exchange failed: the error and its causes.
    #[error("{0}")]
    Transport(String),
    #[error("redirect to a non-text location")]
    LocationNotText,
    #[error("bad redirect `{location}`: {reason}")]
    Redirect {
        location: String,
        reason: url::ParseError,
    },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// The response body passed this many bytes.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

/// A request as a plugin asked for it.
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The answer given back to the plugin.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Makes requests for plugins under the rules above.
pub struct Fetcher {
    /// For named hosts: resolves to public addresses only.
    public: reqwest::Client,
    /// For IP-literal grants, which never resolve.
    literal: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Fetcher {
    pub fn new(timeout: Duration, max_response_bytes: usize) -> anyhow::Result<Self> {
        let resolver = address::Checked {
            lookup: address::System,
            permitted: is_public,
        };
        Self::with_resolver(timeout, max_response_bytes, Arc::new(resolver))
    }

    /// A fetcher whose named hosts go through `resolver`.
    fn with_resolver<R: Resolve + 'static>(
        timeout: Duration,
        max_response_bytes: usize,
        resolver: Arc<R>,
    ) -> anyhow::Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("wirehook/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Self {
            public: builder().dns_resolver(resolver).build()?,
            literal: builder().build()?,
            timeout,
            max_response_bytes,
        })
    }

    /// Sends `request` if `grants` permit it, following permitted redirects.
    /// Traced, the request carries the `traceparent` of its span, whose
    /// attributes are the method, the origin (never the path or query,
    /// which may hold tokens) and the status.
    pub async fn fetch(&self, grants: &[Origin], request: Request) -> Result<Fetched, FetchError> {
        let span = tracing::info_span!(
            target: TARGET,
            "fetch",
            // HTTP's semantic conventions name a client span by its
            // method when there is no URL template.
            otel.name = %request.method,
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = %request.method,
            server.address = Empty,
            http.response.status_code = Empty,
        );
        if span.is_disabled() {
            return self.send(grants, request).await;
        }
        if let Ok(url) = Url::parse(&request.url) {
            span.record("server.address", url.origin().ascii_serialization());
        }
        let response = self.send(grants, request).instrument(span.clone()).await;
        match &response {
            Ok(response) => {
                span.record("http.response.status_code", response.status);
                if response.status >= 400 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        response
    }

    async fn send(&self, grants: &[Origin], request: Request) -> Result<Fetched, FetchError> {
        let mut url = Url::parse(&request.url).map_err(|reason| FetchError::Url {
            url: request.url.clone(),
            reason,
        })?;
        let mut method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| FetchError::Method(request.method.clone()))?;
        let mut headers = plugin_headers(&request.headers)?;
        for (name, value) in telemetry::current_context() {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        let mut body = request.body;
        for _ in 0..=MAX_REDIRECTS {
            let client = self.client_for(grants, &url)?;
            let mut builder = client
                .request(method.clone(), url.clone())
                .timeout(self.timeout)
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = builder.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            let Some(next) = redirect_target(&response, &url)? else {
                return self.read(response).await;
            };
            let to_get = match status {
                StatusCode::SEE_OTHER => method != Method::HEAD,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => method == Method::POST,
                _ => false,
            };
            if to_get {
                method = Method::GET;
                body = None;
                for name in &BODY_HEADERS {
                    headers.remove(name);
                }
            }
            if next.origin() != url.origin() {
                for name in &CREDENTIAL_HEADERS {
                    headers.remove(name);
                }
            }
            url = next;
        }
        Err(FetchError::TooManyRedirects)
    }

    fn client_for(&self, grants: &[Origin], url: &Url) -> Result<&reqwest::Client, FetchError> {
        let origin = url.origin().ascii_serialization();
        let Some(grant) = grants.iter().find(|g| g.permits(url)) else {
            return Err(FetchError::NotGranted(origin));
        };
        Ok(match grant.host {
            HostPattern::Ip(_) => &self.literal,
            _ => &self.public,
        })
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<Fetched, FetchError> {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(FetchError::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            headers,
            body,
        })
    }
}

/// The plugin's headers, refusing the reserved ones and malformed ones.
fn plugin_headers(headers: &[(String, String)]) -> Result<HeaderMap, FetchError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| FetchError::HeaderName(name.clone()))?;
        if RESERVED_HEADERS.contains(&name) {
            return Err(FetchError::ReservedHeader(name));
        }
        let value =
            HeaderValue::from_str(value).map_err(|_| FetchError::HeaderValue(name.clone()))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Where a redirect response sends the request next; `None` when the
/// response is not a redirect to follow.
fn redirect_target(response: &reqwest::Response, url: &Url) -> Result<Option<Url>, FetchError> {
    let followed = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if !followed.contains(&response.status()) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return Ok(None);
    };
    let location = location.to_str().map_err(|_| FetchError::LocationNotText)?;
    url.join(location)
        .map(Some)
        .map_err(|reason| FetchError::Redirect {
            location: location.to_owned(),
            reason,
        })
}

/// The error and its causes on one line (reqwest hides the cause).
fn describe(error: &reqwest::Error) -> FetchError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Transport(text)
}
