//! Turns an upstream address as written in a proxy config ("127.0.0.1:3000",
//! "[::1]:8080", "unix:/run/php/fpm.sock", "app.internal") into the host, port
//! and socket path of an [`UpstreamTarget`], shared by every proxy parser.

use gw502_proto::v1::UpstreamTarget;

/// The parts of an address: host (brackets stripped), port (0 if absent) and
/// unix socket path (empty for TCP).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// Host name or IP literal; empty for unix sockets.
    pub host: String,
    /// Port, 0 when the address names none.
    pub port: u32,
    /// Unix socket path, empty for TCP.
    pub unix_path: String,
}

/// Splits `addr` (no scheme, no URI) into host, port and unix path.
/// `default_port` is used when the address has no port.
pub fn split_address(addr: &str, default_port: u32) -> Address {
    if let Some(path) = addr.strip_prefix("unix:") {
        return Address {
            unix_path: path.to_string(),
            ..Address::default()
        };
    }
    if let Some(path) = addr.strip_prefix('/') {
        return Address {
            unix_path: format!("/{path}"),
            ..Address::default()
        };
    }
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default_port);
        return Address {
            host: host.to_string(),
            port,
            ..Address::default()
        };
    }
    // A bare IPv6 literal has several colons and no port.
    if addr.matches(':').count() > 1 {
        return Address {
            host: addr.to_string(),
            port: default_port,
            ..Address::default()
        };
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => Address {
            host: host.to_string(),
            port: port.parse().unwrap_or(0),
            ..Address::default()
        },
        None => Address {
            host: addr.to_string(),
            port: default_port,
            ..Address::default()
        },
    }
}

/// Builds a target from its protocol, written address and directive; the
/// caller fills group, server names and location.
pub fn target(protocol: &str, address: &str, default_port: u32, directive: &str) -> UpstreamTarget {
    let parts = split_address(address, default_port);
    UpstreamTarget {
        protocol: protocol.to_string(),
        address: address.to_string(),
        host: parts.host,
        port: parts.port,
        unix_path: parts.unix_path,
        directive: directive.to_string(),
        runtime_resolve: address.contains('$'),
        ..UpstreamTarget::default()
    }
}

/// The port a scheme implies when the address names none.
pub fn default_port(protocol: &str) -> u32 {
    match protocol {
        "http" | "grpc" | "ws" => 80,
        "https" | "grpcs" | "wss" => 443,
        _ => 0,
    }
}

/// Splits a URL (`http://host:port/path`) into (scheme, authority); the path
/// is dropped. Without `://`, the scheme is empty and all of it is authority
/// up to the first `/`.
pub fn split_url(url: &str) -> (&str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // nginx writes unix sockets as `http://unix:/path:/uri`: the path ends at `:`.
    if let Some(path) = rest.strip_prefix("unix:") {
        let end = path.find(':').map(|i| i + 5).unwrap_or(rest.len());
        return (scheme, &rest[..end]);
    }
    let end = rest.find('/').unwrap_or(rest.len());
    (scheme, &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tcp_unix_and_ipv6() {
        assert_eq!(
            split_address("127.0.0.1:3000", 80),
            Address {
                host: "127.0.0.1".into(),
                port: 3000,
                unix_path: String::new()
            }
        );
        assert_eq!(split_address("app.internal", 80).port, 80);
        assert_eq!(split_address("[::1]:8080", 80).host, "::1");
        assert_eq!(split_address("[::1]", 443).port, 443);
        assert_eq!(split_address("::1", 9).host, "::1");
        assert_eq!(
            split_address("unix:/run/a.sock", 80).unix_path,
            "/run/a.sock"
        );
        assert_eq!(split_address("/run/b.sock", 80).unix_path, "/run/b.sock");
        assert_eq!(split_address("host:notaport", 80).port, 0);
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:3000/api"),
            ("http", "127.0.0.1:3000")
        );
        assert_eq!(
            split_url("http://unix:/tmp/b.sock:/uri/"),
            ("http", "unix:/tmp/b.sock")
        );
        assert_eq!(
            split_url("http://unix:/tmp/b.sock"),
            ("http", "unix:/tmp/b.sock")
        );
        assert_eq!(split_url("backend"), ("", "backend"));
        let t = target("http", "$backend", 80, "proxy_pass");
        assert!(t.runtime_resolve);
    }
}
