//! Addresses: the site's URL, upstream targets as logs and configs write them,
//! and whether a listener answers for a target.
//!
//! Proxies name their upstreams in several shapes (`http://127.0.0.1:3000/`,
//! `fastcgi://unix:/run/php/php8.2-fpm.sock:`, `[::1]:8080`, `app.internal:80`).
//! The handoff and upstream rules compare them with listeners, so the parsing
//! and the address-family logic live here, pure and separately tested.

use gw502_proto::v1::{Listener, UpstreamTarget};

/// The site's public address, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SiteAddr {
    /// Lowercase host name without port.
    pub host: String,
    /// Explicit or scheme-default port.
    pub port: u16,
}

impl SiteAddr {
    /// Parses `https://shop.example:8443/x`; a bare name works too.
    pub fn parse(url: &str) -> SiteAddr {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let default = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        let (host, port) = split_host_port(authority);
        SiteAddr {
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default),
        }
    }
}

/// An upstream the proxy connects to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Target {
    /// Host name or IP literal (no brackets); empty for unix sockets.
    pub host: String,
    /// TCP port, if any.
    pub port: Option<u16>,
    /// Unix socket path, if the target is a unix socket.
    pub unix: Option<String>,
}

impl Target {
    /// Parses the upstream field of a log line or a config address.
    pub fn parse(text: &str) -> Option<Target> {
        let text = text.trim().trim_matches('"');
        let rest = text.split_once("://").map_or(text, |(_, r)| r);
        if let Some(path) = rest.strip_prefix("unix:") {
            let path = path.split(':').next().unwrap_or("").trim();
            return (!path.is_empty()).then(|| Target {
                unix: Some(path.to_string()),
                ..Target::default()
            });
        }
        let authority = rest.split('/').next().unwrap_or("").trim();
        let authority = authority.rsplit(' ').next().unwrap_or(authority);
        let (host, port) = split_host_port(authority);
        (!host.is_empty()).then(|| Target {
            host: host.to_ascii_lowercase(),
            port,
            unix: None,
        })
    }

    /// Takes a target from the parsed proxy config.
    pub fn from_config(t: &UpstreamTarget) -> Option<Target> {
        if !t.unix_path.is_empty() {
            return Some(Target {
                unix: Some(t.unix_path.clone()),
                ..Target::default()
            });
        }
        if t.host.is_empty() {
            return Target::parse(&t.address);
        }
        let port = u16::try_from(t.port).ok().filter(|p| *p != 0);
        Some(Target {
            host: t.host.trim_matches(['[', ']']).to_ascii_lowercase(),
            port,
            unix: None,
        })
    }

    /// `unix:/path` or `host:port`, for messages.
    pub fn display(&self) -> String {
        match (&self.unix, self.port) {
            (Some(p), _) => format!("unix:{p}"),
            (None, Some(port)) if self.host.contains(':') => format!("[{}]:{port}", self.host),
            (None, Some(port)) => format!("{}:{port}", self.host),
            (None, None) => self.host.clone(),
        }
    }

    /// Whether the host part is a loopback literal or `localhost`.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.starts_with("127.") || self.host == "::1"
    }

    /// Whether the host part is an IP literal (not a name to resolve).
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    /// Same target, ignoring how it was written.
    pub fn same(&self, other: &Target) -> bool {
        self.unix == other.unix
            && self.port == other.port
            && (self.host == other.host || self.unix.is_some())
    }
}

/// Splits `host:port`, `[v6]:port`, `v6` or `host`.
fn split_host_port(authority: &str) -> (String, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (
            host.to_string(),
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (authority.to_string(), None),
    }
}

/// The port of a virtual server's `listen` as written (`80`, `[::]:443 ssl`,
/// `10.0.0.5:8080`, Apache's `*:80`): a port-less address is :80, a unix socket
/// has none.
pub(crate) fn listen_port(listen: &str) -> Option<u16> {
    let address = listen.split_whitespace().next()?;
    if address.starts_with("unix:") {
        return None;
    }
    Some(match address.parse::<u16>() {
        Ok(p) => p,
        Err(_) => split_host_port(address).1.unwrap_or(80),
    })
}

/// Whether a `listen` takes connections on `port`, and whether it is marked as
/// that port's default server (nginx `default_server`, or `default` in old
/// configs); `None` when it listens elsewhere.
pub(crate) fn listen_on(listen: &str, port: u16) -> Option<bool> {
    (listen_port(listen)? == port).then(|| {
        listen
            .split_whitespace()
            .any(|w| matches!(w, "default_server" | "default"))
    })
}

/// A Caddy site address as written (`http://:80`, `:8080`, `shop.example`):
/// whether it takes every host on `port`, as a site with no host does. Without
/// a scheme or port Caddy serves HTTPS on 443.
pub(crate) fn caddy_catch_all(address: &str, port: u16) -> bool {
    let (scheme, rest) = address.split_once("://").unwrap_or(("", address));
    let (host, given) = split_host_port(rest.split('/').next().unwrap_or(rest));
    let default = if scheme.eq_ignore_ascii_case("http") {
        80
    } else {
        443
    };
    matches!(host.as_str(), "" | "*") && given.unwrap_or(default) == port
}

/// Whether a TCP listener accepts connections to `host` (an IP literal or
/// `localhost`): exact address, or a wildcard of a compatible family.
pub(crate) fn listener_accepts(l: &Listener, host: &str) -> bool {
    let addr = l.address.trim_matches(['[', ']']);
    let v6_target = host.contains(':');
    match addr {
        "0.0.0.0" | "*" | "" => !v6_target,
        // A `::` socket takes IPv4 too unless bindv6only; Linux defaults to dual stack.
        "::" => true,
        _ if host == "localhost" => addr.starts_with("127.") || addr == "::1",
        _ => addr == host,
    }
}

/// Whether a listener is a TCP one.
pub(crate) fn is_tcp(l: &Listener) -> bool {
    l.family.starts_with("tcp")
}

/// Human form of a listener for evidence lines.
pub(crate) fn describe_listener(l: &Listener) -> String {
    let owner = if !l.container.is_empty() {
        format!("container {} ({})", l.container, l.process)
    } else if l.unit.is_empty() {
        l.process.clone()
    } else {
        l.unit.clone()
    };
    if l.family == "unix" {
        format!(
            "{owner} listens on unix:{} (mode {:o} uid {} gid {})",
            l.address, l.mode, l.uid, l.gid
        )
    } else if l.address.contains(':') {
        format!(
            "{owner} listens on [{}]:{} ({})",
            l.address.trim_matches(['[', ']']),
            l.port,
            l.family
        )
    } else {
        format!("{owner} listens on {}:{} ({})", l.address, l.port, l.family)
    }
}

/// nginx server_name matching: exact, `*.example.com`, `.example.com`, `www.example.*`.
pub(crate) fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim().to_ascii_lowercase();
    if p.is_empty() || host.is_empty() {
        return false;
    }
    if let Some(suffix) = p.strip_prefix("*.") {
        return host.ends_with(&format!(".{suffix}"));
    }
    if let Some(suffix) = p.strip_prefix('.') {
        return host == suffix || host.ends_with(&format!(".{suffix}"));
    }
    if let Some(prefix) = p.strip_suffix(".*") {
        return host.starts_with(&format!("{prefix}."));
    }
    p == host || p.split(':').next() == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_and_catch_alls_on_a_port() {
        assert_eq!(listen_on("80", 80), Some(false));
        assert_eq!(listen_on("[::]:80 default_server", 80), Some(true));
        assert_eq!(listen_on("10.0.0.5:8080 default", 8080), Some(true));
        assert_eq!(listen_on("*:80", 80), Some(false));
        assert_eq!(listen_on("443 ssl", 80), None);
        assert_eq!(listen_on("unix:/run/nginx.sock", 80), None);
        assert!(caddy_catch_all("http://:80", 80));
        assert!(caddy_catch_all(":8080", 8080));
        assert!(caddy_catch_all(":443", 443));
        assert!(!caddy_catch_all("http://shop.example:80", 80));
        assert!(!caddy_catch_all("http://:80", 443));
        assert!(!caddy_catch_all("shop.example", 443));
    }

    #[test]
    fn parses_the_shapes_proxies_write() {
        let t = Target::parse("http://127.0.0.1:3000/api").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", Some(3000)));
        let t = Target::parse("fastcgi://unix:/run/php/php8.2-fpm.sock:").unwrap();
        assert_eq!(t.unix.as_deref(), Some("/run/php/php8.2-fpm.sock"));
        let t = Target::parse("[::1]:8080").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(8080)));
        let t = Target::parse("https://App.Internal:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("app.internal", Some(8443)));
        assert_eq!(Target::parse(""), None);
        assert_eq!(
            SiteAddr::parse("https://Shop.Example/x"),
            SiteAddr {
                host: "shop.example".into(),
                port: 443
            }
        );
        assert_eq!(SiteAddr::parse("http://a.example:8080").port, 8080);
    }

    #[test]
    fn wildcards_accept_by_family() {
        let l = |a: &str| Listener {
            family: "tcp4".into(),
            address: a.into(),
            port: 1,
            ..Default::default()
        };
        assert!(listener_accepts(&l("0.0.0.0"), "127.0.0.1"));
        assert!(!listener_accepts(&l("0.0.0.0"), "::1"));
        assert!(listener_accepts(&l("::"), "127.0.0.1"));
        assert!(!listener_accepts(&l("::1"), "127.0.0.1"));
        assert!(listener_accepts(&l("::1"), "localhost"));
        assert!(!listener_accepts(&l("10.0.0.5"), "127.0.0.1"));
    }
}
