//! Which addresses a plugin may reach by name, and the resolver that hands
//! reqwest only those, so the connection goes to an address that was
//! checked (no DNS-rebinding window between the check and the connect).
//!
//! Public means: not in any block of IANA's IPv4 and IPv6 Special-Purpose
//! Address Registries, whatever their "globally reachable" column says (no
//! CRM a plugin calls lives in AS112 or an anycast relay), nor multicast,
//! nor outside IPv6 global unicast. An IPv4 address embedded in IPv6 (mapped
//! `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is judged as that IPv4
//! address. 6to4 and the IPv4-compatible form are refused outright: both
//! are deprecated and would reach an IPv4 address through a tunnel.
//! Hand-kept tables rather than a crate: the crates that answer "is global"
//! follow IANA's reachability column, which counts NAT64 as global.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 3], len: u8) -> Ipv6Net {
    let [a, b, c] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0), len)
}

/// IPv4 blocks that are not public, with the RFC that sets each apart.
const V4_SPECIAL: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "RFC 791: this network"),
    (v4(10, 0, 0, 0, 8), "RFC 1918: private use"),
    (
        v4(100, 64, 0, 0, 10),
        "RFC 6598: shared address space (CGN)",
    ),
    (v4(127, 0, 0, 0, 8), "RFC 1122: loopback"),
    (
        v4(169, 254, 0, 0, 16),
        "RFC 3927: link local (cloud metadata)",
    ),
    (v4(172, 16, 0, 0, 12), "RFC 1918: private use"),
    (
        v4(192, 0, 0, 0, 24),
        "RFC 6890: IETF protocol assignments (DS-Lite, PCP, TURN, NAT64 discovery)",
    ),
    (v4(192, 0, 2, 0, 24), "RFC 5737: documentation (TEST-NET-1)"),
    (v4(192, 31, 196, 0, 24), "RFC 7535: AS112-v4"),
    (v4(192, 52, 193, 0, 24), "RFC 7450: AMT"),
    (
        v4(192, 88, 99, 0, 24),
        "RFC 7526: deprecated 6to4 relay anycast",
    ),
    (v4(192, 168, 0, 0, 16), "RFC 1918: private use"),
    (v4(192, 175, 48, 0, 24), "RFC 7534: direct delegation AS112"),
    (v4(198, 18, 0, 0, 15), "RFC 2544: benchmarking"),
    (
        v4(198, 51, 100, 0, 24),
        "RFC 5737: documentation (TEST-NET-2)",
    ),
    (
        v4(203, 0, 113, 0, 24),
        "RFC 5737: documentation (TEST-NET-3)",
    ),
    (v4(224, 0, 0, 0, 4), "RFC 5771: multicast"),
    (
        v4(240, 0, 0, 0, 4),
        "RFC 1112: reserved, and RFC 919's broadcast",
    ),
];

/// IPv6 global unicast (RFC 4291 §2.4). Everything outside is refused:
/// `::` and `::1` (RFC 4291), IPv4-compatible `::a.b.c.d` (RFC 4291
/// §2.5.5.1, deprecated), local-use NAT64 `64:ff9b:1::/48` (RFC 8215),
/// discard-only `100::/64` (RFC 6666) and the dummy prefix `100:0:0:1::/64`
/// (RFC 9780), SRv6 SIDs `5f00::/16` (RFC 9602), unique local `fc00::/7`
/// (RFC 4193), link-local `fe80::/10` (RFC 4291), site-local `fec0::/10`
/// (RFC 3879, deprecated), multicast `ff00::/8` (RFC 4291).
const V6_GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0], 3);

/// Blocks inside global unicast that are not public.
const V6_SPECIAL: &[(Ipv6Net, &str)] = &[
    (
        v6([0x2001, 0, 0], 23),
        "RFC 2928: IETF protocol assignments (Teredo, benchmarking, ORCHID, AMT, AS112)",
    ),
    (v6([0x2001, 0xdb8, 0], 32), "RFC 3849: documentation"),
    (
        v6([0x2002, 0, 0], 16),
        "RFC 3056: 6to4 (deprecated by RFC 7526)",
    ),
    (
        v6([0x2620, 0x4f, 0x8000], 48),
        "RFC 7534: direct delegation AS112",
    ),
    (v6([0x3fff, 0, 0], 20), "RFC 9637: documentation"),
];

/// NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4
/// address the translator connects to.
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0], 96);

/// Whether a plugin may connect to `ip` having asked for it by name.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_SPECIAL.iter().any(|(net, _)| net.contains(&v4)),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if NAT64.contains(&v6) {
                let [.., a, b, c, d] = v6.octets();
                return is_public(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            V6_GLOBAL_UNICAST.contains(&v6) && !V6_SPECIAL.iter().any(|(net, _)| net.contains(&v6))
        }
    }
}

/// A name's addresses, before they are checked.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String)
    -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system's resolver (getaddrinfo: `/etc/hosts`, then DNS).
pub struct System;

impl Lookup for System {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// Resolves names to the addresses `permitted` allows, refusing a name
/// with none. reqwest connects to exactly what this returns.
pub struct Checked<L> {
    pub lookup: L,
    pub permitted: fn(IpAddr) -> bool,
}

impl<L: Lookup> Resolve for Checked<L> {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.lookup.lookup(host.clone());
        let permitted = self.permitted;
        Box::pin(async move {
            let all = lookup.await?;
            let allowed: Vec<SocketAddr> = all
                .iter()
                .filter(|ip| permitted(**ip))
                .map(|ip| SocketAddr::new(*ip, 0))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "`{host}` resolves only to non-public addresses ({})",
                    all.iter()
                        .map(IpAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            // NAT64 of a private address, and the local-use prefix.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::5db8:d822",
            // 6to4, even of a public address.
            "2002:5db8:d822::1",
            "2002:7f00:1::1",
            // IPv4-compatible.
            "::127.0.0.1",
            "::93.184.216.34",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "3fff::1",
            "5f00::1",
            "100::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "2606:2800:220:1::1",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
