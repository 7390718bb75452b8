//! The `fetch` capability: outbound HTTP for plugins, to granted origins
//! only.
//!
//! A custom host function rather than `wasi:http/outgoing-handler`: the
//! allowlist, the address policy and the limits apply to one small
//! request/response record, and plugins in every language get the same
//! simple call instead of WASI HTTP's resources and streams.
//!
//! The rules, in order: the URL's origin must match an `allow_http` entry
//! (parsed, never a string prefix); a named host must resolve only to
//! public addresses — loopback, private, link-local (metadata) and similar
//! ranges are refused even when the name is granted — and the connection
//! uses exactly the addresses that were checked; an IP-literal entry is an
//! explicit grant of that address and port. Redirects are followed only to
//! granted origins, a few hops at most; every response is size-capped.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 5;

/// The host part of an `allow_http` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Subdomains(String),
    Ip(IpAddr),
}

/// One `allow_http` entry: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: HostPattern,
    port: u16,
}

impl Origin {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let invalid =
            |why: &str| format!("`{entry}` is not an origin (scheme://host[:port]): {why}");
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| invalid("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid("only scheme, host and port are allowed"));
        }
        let (host, port) = split_port(authority).map_err(|e| invalid(&e))?;
        let host = if let Some(domain) = host.strip_prefix("*.") {
            HostPattern::Subdomains(normalise(domain))
        } else if let Some(ip) = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .or(Some(host))
            .and_then(|h| h.parse::<IpAddr>().ok())
        {
            HostPattern::Ip(ip)
        } else {
            HostPattern::Exact(normalise(host))
        };
        if matches!(&host, HostPattern::Exact(h) | HostPattern::Subdomains(h) if h.is_empty() || h.contains('*'))
        {
            return Err(invalid("bad host"));
        }
        Ok(Self {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }

    fn permits(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        match (url.host(), &self.host) {
            (Some(url::Host::Domain(name)), HostPattern::Exact(granted)) => {
                normalise(name) == *granted
            }
            (Some(url::Host::Domain(name)), HostPattern::Subdomains(domain)) => {
                normalise(name).ends_with(&format!(".{domain}"))
            }
            (Some(url::Host::Ipv4(ip)), HostPattern::Ip(granted)) => IpAddr::V4(ip) == *granted,
            (Some(url::Host::Ipv6(ip)), HostPattern::Ip(granted)) => IpAddr::V6(ip) == *granted,
            _ => false,
        }
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let port_at = if authority.starts_with('[') {
        authority.find("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    match port_at {
        Some(i) => {
            let port = authority[i + 1..]
                .parse()
                .map_err(|_| "bad port".to_owned())?;
            Ok((&authority[..i], Some(port)))
        }
        None => Ok((authority, None)),
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a plugin may connect to `ip` having asked for it by name.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local() // 169.254/16, cloud metadata among them
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0xdb8) // documentation
        }
    }
}

/// Resolves names to their public addresses only, so the connection goes
/// to an address that was checked (no DNS-rebinding window).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs = public_addrs(name.as_str()).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

async fn public_addrs(
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() {
        return Err(format!(
            "`{host}` resolves only to non-public addresses ({})",
            all.iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into());
    }
    Ok(public)
}

/// A request as a plugin asked for it.
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// The answer given back to the plugin.
pub struct Response {
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
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("wirehook/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Self {
            public: builder().dns_resolver(Arc::new(PublicOnly)).build()?,
            literal: builder().build()?,
            timeout,
            max_response_bytes,
        })
    }

    /// Sends `request` if `grants` permit it, following permitted redirects.
    pub async fn fetch(&self, grants: &[Origin], request: Request) -> Result<Response, String> {
        let mut url =
            Url::parse(&request.url).map_err(|e| format!("bad URL `{}`: {e}", request.url))?;
        let mut method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("bad method `{}`", request.method))?;
        let mut body = request.body;
        for _ in 0..=MAX_REDIRECTS {
            let client = self.client_for(grants, &url)?;
            let mut builder = client
                .request(method.clone(), url.clone())
                .timeout(self.timeout);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = builder.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                let location = location
                    .to_str()
                    .map_err(|_| "redirect to a non-text location")?;
                url = url
                    .join(location)
                    .map_err(|e| format!("bad redirect `{location}`: {e}"))?;
                if status == reqwest::StatusCode::SEE_OTHER {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            return self.read(response).await;
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    fn client_for(&self, grants: &[Origin], url: &Url) -> Result<&reqwest::Client, String> {
        let origin = url.origin().ascii_serialization();
        let Some(grant) = grants.iter().find(|g| g.permits(url)) else {
            return Err(format!("`{origin}` is not in allow_http"));
        };
        Ok(match grant.host {
            HostPattern::Ip(_) => &self.literal,
            _ => &self.public,
        })
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<Response, String> {
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
                return Err(format!(
                    "response larger than {} bytes",
                    self.max_response_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The error and its causes on one line (reqwest hides the cause).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(entry: &str, url: &str) -> bool {
        Origin::parse(entry)
            .unwrap()
            .permits(&Url::parse(url).unwrap())
    }

    #[test]
    fn origins_match_on_the_parsed_url() {
        assert!(permits(
            "https://crm.example.com",
            "https://crm.example.com/contacts"
        ));
        assert!(permits(
            "https://crm.example.com",
            "https://CRM.example.com.:443/x"
        ));
        assert!(!permits(
            "https://crm.example.com",
            "http://crm.example.com/"
        ));
        assert!(!permits(
            "https://crm.example.com",
            "https://crm.example.com:8443/"
        ));
        assert!(!permits(
            "https://crm.example.com",
            "https://crm.example.com.evil.io/"
        ));
        assert!(!permits(
            "https://crm.example.com",
            "https://crm.example.com@evil.io/"
        ));
        assert!(permits("https://*.example.com", "https://a.b.example.com/"));
        assert!(!permits("https://*.example.com", "https://example.com/"));
        assert!(!permits("https://*.example.com", "https://badexample.com/"));
        assert!(permits("http://127.0.0.1:9000", "http://127.0.0.1:9000/x"));
        assert!(!permits("http://127.0.0.1:9000", "http://127.0.0.1:9001/x"));
        assert!(permits("http://[::1]:9000", "http://[::1]:9000/"));
    }

    #[test]
    fn bad_entries_are_refused() {
        for entry in [
            "crm.example.com",
            "ftp://x",
            "https://x/path",
            "https://*",
            "https://a:b",
        ] {
            assert!(Origin::parse(entry).is_err(), "{entry}");
        }
    }

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
