//! The SSRF guard of the edge prober: an operator-configured URL must not
//! make the collector talk to its own loopback, the cloud metadata service or
//! the private network behind it.
//!
//! A URL is parsed with the WHATWG rules (so `http://2130706433/` and
//! `http://0177.0.0.1/` are the loopback address they encode), its host is
//! resolved once, and every resolved address must be public unless private
//! addresses are allowed or the address is inside an allowed CIDR. The probe
//! then connects to the vetted address itself, so a DNS answer that changes
//! between check and use (rebinding) cannot move it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use gw502_probe::fetch::{Target, parse_target};
use serde::{Deserialize, Deserializer};

/// An IPv4 or IPv6 network such as `10.77.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR {text:?}: bad address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .map_err(|_| format!("invalid CIDR {text:?}: bad prefix"))?
        };
        if prefix > max {
            return Err(format!("invalid CIDR {text:?}: prefix above {max}"));
        }
        match (network, canonical(network)) {
            (IpAddr::V6(_), v4 @ IpAddr::V4(_)) if prefix >= 96 => Ok(Self {
                network: v4,
                prefix: prefix - 96,
            }),
            _ => Ok(Self { network, prefix }),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Why an IPv4 address is not public, or `None` when it is.
fn internal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u32, &str); 16] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
        ([255, 255, 255, 255], 32, "broadcast"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why an address is not public (loopback, private, link-local, ...), or
/// `None` when a public probe may connect to it. IPv6 forms that embed an
/// IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    let v6 = match ip {
        IpAddr::V4(v4) => return internal_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    let bits = u128::from(v6);
    let seg = v6.segments();
    let embedded = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if v6.is_unspecified() {
        return Some("unspecified");
    }
    if v6.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = v6.to_ipv4_mapped() {
        return internal_v4(v4).or(Some("ipv4-mapped"));
    }
    if bits >> 32 == 0 {
        // ::a.b.c.d, deprecated IPv4-compatible
        return internal_v4(embedded).or(Some("ipv4-compatible"));
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] {
        return internal_v4(embedded).map(|_| "NAT64 of an internal address");
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return internal_v4(v4).map(|_| "6to4 of an internal address");
    }
    let ranges: [(u128, u32, &str); 7] = [
        (0xfc00 << 112, 7, "unique local (ULA)"),
        (0xfe80 << 112, 10, "link-local"),
        (0xfec0 << 112, 10, "site-local"),
        (0xff00 << 112, 8, "multicast"),
        (0x2001_0db8 << 96, 32, "documentation"),
        (0x2001_0000 << 96, 32, "Teredo"),
        (0x0100 << 112, 64, "discard-only"),
    ];
    ranges
        .iter()
        .find(|(net, prefix, _)| {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            bits & mask == net & mask
        })
        .map(|(_, _, why)| *why)
}

/// The guard's policy.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Allow every internal address.
    pub allow_private: bool,
    /// Internal networks allowed anyway.
    pub allow_cidrs: Vec<Cidr>,
}

/// A URL the guard let through, with the address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    /// The parsed URL.
    pub target: Target,
    /// The vetted address; the probe must connect here and nowhere else.
    pub peer: SocketAddr,
}

/// Why the guard stopped a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The URL or an address is not allowed (outcome `blocked`).
    #[error("{0}")]
    Blocked(String),
    /// The host did not resolve (outcome `dns_error`).
    #[error("{0}")]
    Dns(String),
}

impl Guard {
    /// Whether the policy lets a probe connect to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(reason) = internal_reason(ip) else {
            return Ok(());
        };
        if self.allow_private || self.allow_cidrs.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        Err(Refusal::Blocked(format!("ssrf guard: {ip} is {reason}")))
    }

    /// Parses `url`, resolves its host once and vets every address.
    pub async fn vet(&self, url: &str) -> Result<Vetted, Refusal> {
        let target = parse_target(url).map_err(|e| Refusal::Blocked(format!("ssrf guard: {e}")))?;
        let addrs: Vec<SocketAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, target.port)],
            Err(_) => tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|e| Refusal::Dns(format!("{}: {e}", target.host)))?
                .collect(),
        };
        let Some(first) = addrs.first().copied() else {
            return Err(Refusal::Dns(format!("{}: no addresses", target.host)));
        };
        for addr in &addrs {
            self.check(addr.ip())?;
        }
        Ok(Vetted {
            target,
            peer: first,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_table() {
        let rows = [
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("0.0.0.0", true),
            ("10.77.0.5", true),
            ("172.31.255.1", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("255.255.255.255", true),
            ("224.0.0.251", true),
            ("192.0.2.1", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", false),
            ("2002:7f00:1::", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("2606:4700::6810:84e5", false),
        ];
        for (ip, internal) in rows {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(internal_reason(ip).is_some(), internal, "{ip}");
        }
    }

    #[test]
    fn cidrs_and_allow_private() {
        let cidr: Cidr = "10.77.0.0/24".parse().unwrap();
        assert!(cidr.contains("10.77.0.9".parse().unwrap()));
        assert!(cidr.contains("::ffff:10.77.0.9".parse().unwrap()));
        assert!(!cidr.contains("10.77.1.9".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let guard = Guard {
            allow_private: false,
            allow_cidrs: vec![cidr],
        };
        assert!(guard.check("10.77.0.9".parse().unwrap()).is_ok());
        assert!(guard.check("10.78.0.9".parse().unwrap()).is_err());
        assert!(guard.check("127.0.0.1".parse().unwrap()).is_err());
        let open = Guard {
            allow_private: true,
            allow_cidrs: vec![],
        };
        assert!(open.check("127.0.0.1".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn tricky_urls_are_refused() {
        let guard = Guard::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://localhost/",
            "http://user:pass@127.0.0.1/",
            "gopher://example.com/",
            "file:///etc/passwd",
        ] {
            match guard.vet(url).await {
                Err(Refusal::Blocked(why)) => {
                    assert!(why.starts_with("ssrf guard:"), "{url}: {why}")
                }
                other => panic!("{url} was not blocked: {other:?}"),
            }
        }
    }
}
