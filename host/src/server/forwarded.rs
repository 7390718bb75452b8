//! Who sent a request: the peer, or behind `server.trusted_proxies` the
//! nearest untrusted hop of `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list each proxy appends its own peer to, so only
//! the right-hand end is written by proxies wirehook trusts; everything to
//! the left of the first untrusted hop may be forged by the client. The walk
//! therefore goes from the right over trusted hops and stops at the first
//! one that is not trusted. Hops are read in the forms proxies write: `IP`,
//! `IP:port`, `[v6]` and `[v6]:port`.
//!
//! When that nearest untrusted hop is not an address at all (`unknown`, an
//! RFC 7239 obfuscated id such as `_hidden`, garbage), the client is
//! [`Client::Unidentified`]: the proxy vouched for no address, and believing
//! some hop further left would let a client pick its own. An unidentified
//! client is inside no `allow_ips` (such routes answer 403) and is logged as
//! `unknown`.
//!
//! Addresses are compared in canonical form: an IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, what a `[::]` listener reports for IPv4 peers) is the
//! IPv4 address, so IPv4 entries of `allow_ips` and `trusted_proxies` match
//! on a dual-stack listener.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client of a request, as far as the proxies wirehook trusts say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A known address, in canonical form.
    Ip(IpAddr),
    /// A trusted proxy forwarded a hop that is not an address.
    Unidentified,
}

impl Client {
    /// Whether the client is inside one of `nets`; an unidentified client
    /// is inside none.
    pub fn is_in(&self, nets: &[IpNet]) -> bool {
        match self {
            Client::Ip(ip) => contains(nets, *ip),
            Client::Unidentified => false,
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Ip(ip) => ip.fmt(f),
            Client::Unidentified => f.write_str("unknown"),
        }
    }
}

/// Whether `ip` is inside one of `nets`, whichever way an IPv4 address or
/// entry is written (plain or IPv4-mapped IPv6).
fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    let mapped = match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(_) => None,
    };
    nets.iter()
        .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
}

/// Whether `peer` is one of the trusted proxies, whose `traceparent` is
/// believed too.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    contains(trusted, peer.to_canonical())
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the nearest untrusted hop of `X-Forwarded-For` (see the
/// module doc). When every hop is trusted, the leftmost one.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Client {
    let peer = peer.to_canonical();
    if !contains(trusted, peer) {
        return Client::Ip(peer);
    }
    // Field lines of one header combine in order into one list.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(|hop| hop.trim_ascii())
        .filter(|hop| !hop.is_empty());
    let mut client = Client::Ip(peer);
    for hop in hops.rev() {
        let Some(ip) = parse_hop(hop) else {
            return Client::Unidentified;
        };
        client = Client::Ip(ip);
        if !contains(trusted, ip) {
            break;
        }
    }
    client
}

/// One hop as proxies write it: `IP`, `IP:port`, `[v6]` or `[v6]:port`;
/// `None` for anything else.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?;
    let ip = if let Some(rest) = hop.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !after.is_empty() {
            after.strip_prefix(':')?.parse::<u16>().ok()?;
        }
        IpAddr::V6(v6.parse().ok()?)
    } else if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else {
        // IPv4 with a port; a bare IPv6 address parsed above.
        hop.parse::<SocketAddr>()
            .ok()
            .filter(SocketAddr::is_ipv4)?
            .ip()
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(entries: &[&str]) -> Vec<IpNet> {
        entries.iter().map(|e| e.parse().unwrap()).collect()
    }

    /// The client a request from `peer` with these `X-Forwarded-For` lines
    /// is taken for, behind a proxy trusted as 10.0.0.0/8.
    fn client(peer: &str, lines: &[&[u8]]) -> Client {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(
                "x-forwarded-for",
                axum::http::HeaderValue::from_bytes(line).unwrap(),
            );
        }
        client_ip(ip(peer), &headers, &nets(&["10.0.0.0/8"]))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let proxy = "10.0.0.1";
        assert_eq!(
            client(proxy, &[b"203.0.113.9, 10.0.0.2"]),
            Client::Ip(ip("203.0.113.9"))
        );
        assert_eq!(
            client("198.51.100.1", &[b"203.0.113.9"]),
            Client::Ip(ip("198.51.100.1"))
        );
        // No header: the proxy itself.
        assert_eq!(client(proxy, &[]), Client::Ip(ip(proxy)));
    }

    #[test]
    fn every_form_proxies_write_is_read() {
        let proxy = "10.0.0.1";
        for (hop, expected) in [
            ("203.0.113.9", "203.0.113.9"),
            ("203.0.113.9:41234", "203.0.113.9"),
            ("2001:db8::7", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("[2001:db8::7]:41234", "2001:db8::7"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("[::ffff:203.0.113.9]:443", "203.0.113.9"),
        ] {
            let line = format!("174.138.104.128, {hop}");
            assert_eq!(
                client(proxy, &[line.as_bytes()]),
                Client::Ip(ip(expected)),
                "{hop}"
            );
        }
    }

    #[test]
    fn a_forged_left_hop_is_never_believed() {
        let proxy = "10.0.0.1";
        for line in [
            "174.138.104.128, unknown",
            "174.138.104.128, _hidden",
            "174.138.104.128, 203.0.113.9:port",
            "174.138.104.128, [2001:db8::7",
            "174.138.104.128, [2001:db8::7]x",
            "174.138.104.128, 2001:db8::7:443:",
            "174.138.104.128, 203.0.113.9:99999",
            "174.138.104.128, 10.0.0.3, unknown",
            "174.138.104.128, unknown, 10.0.0.3",
        ] {
            assert_eq!(
                client(proxy, &[line.as_bytes()]),
                Client::Unidentified,
                "{line}"
            );
        }
        // A hop that is not text is not an address either.
        assert_eq!(
            client(proxy, &[b"174.138.104.128, \xff\xfe"]),
            Client::Unidentified
        );
        // Junk left of the nearest untrusted hop does not matter.
        assert_eq!(
            client(proxy, &[b"unknown, 174.138.104.128, 203.0.113.9"]),
            Client::Ip(ip("203.0.113.9"))
        );
    }

    #[test]
    fn lines_combine_and_trusted_hops_are_skipped() {
        let proxy = "10.0.0.1";
        assert_eq!(
            client(proxy, &[b"174.138.104.128", b"203.0.113.9, 10.0.0.2"]),
            Client::Ip(ip("203.0.113.9"))
        );
        assert_eq!(
            client(proxy, &[b"203.0.113.9,,10.0.0.2, "]),
            Client::Ip(ip("203.0.113.9"))
        );
        // Every hop trusted: the farthest one.
        assert_eq!(
            client(proxy, &[b"10.0.0.9, 10.0.0.2"]),
            Client::Ip(ip("10.0.0.9"))
        );
    }

    #[test]
    fn mapped_addresses_match_ipv4_entries() {
        // A `[::]` listener reports an IPv4 proxy as ::ffff:10.0.0.1.
        assert_eq!(
            client("::ffff:10.0.0.1", &[b"203.0.113.9"]),
            Client::Ip(ip("203.0.113.9"))
        );
        assert_eq!(
            client("::ffff:198.51.100.1", &[b"203.0.113.9"]),
            Client::Ip(ip("198.51.100.1"))
        );
        let allow = nets(&["174.138.104.128/32"]);
        assert!(Client::Ip(ip("::ffff:174.138.104.128")).is_in(&allow));
        assert!(Client::Ip(ip("174.138.104.128")).is_in(&allow));
        assert!(!Client::Ip(ip("174.138.104.129")).is_in(&allow));
        // An entry written mapped matches the plain address too.
        let mapped = nets(&["::ffff:174.138.104.0/120"]);
        assert!(Client::Ip(ip("174.138.104.128")).is_in(&mapped));
        assert!(!Client::Unidentified.is_in(&nets(&["0.0.0.0/0", "::/0"])));
        assert_eq!(Client::Unidentified.to_string(), "unknown");
    }
}
