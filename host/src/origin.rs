//! `allow_http` entries (`scheme://host[:port]`) and whether a URL is
//! inside one: matched on the parsed URL, never a string prefix.

use std::net::IpAddr;

use reqwest::Url;

/// The host part of an `allow_http` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Subdomains(String),
    Ip(IpAddr),
}

/// Why an `allow_http` entry is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an origin (scheme://host[:port]): {fault}")]
pub struct OriginError {
    pub entry: String,
    pub fault: OriginFault,
}

/// The part of an `allow_http` entry that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginFault {
    #[error("no scheme")]
    NoScheme,
    #[error("the scheme must be http or https")]
    Scheme,
    #[error("only scheme, host and port are allowed")]
    NotOnlyAnOrigin,
    #[error("bad port")]
    Port,
    #[error("bad host")]
    Host,
}

/// One `allow_http` entry: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    pub(crate) host: HostPattern,
    port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            HostPattern::Exact(host) => f.write_str(host)?,
            HostPattern::Subdomains(domain) => write!(f, "*.{domain}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
        }
        write!(f, ":{}", self.port)
    }
}

impl Origin {
    pub fn parse(entry: &str) -> Result<Self, OriginError> {
        let invalid = |fault| OriginError {
            entry: entry.to_owned(),
            fault,
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| invalid(OriginFault::NoScheme))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(invalid(OriginFault::Scheme)),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(invalid(OriginFault::NotOnlyAnOrigin));
        }
        let (host, port) = split_port(authority).map_err(invalid)?;
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
            return Err(invalid(OriginFault::Host));
        }
        Ok(Self {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }

    pub(super) fn permits(&self, url: &Url) -> bool {
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

fn split_port(authority: &str) -> Result<(&str, Option<u16>), OriginFault> {
    let port_at = if authority.starts_with('[') {
        authority.find("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    match port_at {
        Some(i) => {
            let port = authority[i + 1..].parse().map_err(|_| OriginFault::Port)?;
            Ok((&authority[..i], Some(port)))
        }
        None => Ok((authority, None)),
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
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
        for (entry, fault) in [
            ("crm.example.com", OriginFault::NoScheme),
            ("ftp://x", OriginFault::Scheme),
            ("https://x/path", OriginFault::NotOnlyAnOrigin),
            ("https://*", OriginFault::Host),
            ("https://a:b", OriginFault::Port),
        ] {
            let err = Origin::parse(entry).unwrap_err();
            assert_eq!(err.fault, fault, "{entry}");
            assert!(
                err.to_string()
                    .starts_with(&format!("`{entry}` is not an origin"))
            );
        }
    }
}
