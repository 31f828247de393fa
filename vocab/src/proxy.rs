//! The reverse proxies gw502 knows. The agent labels each proxy config and
//! log signal with one, probes name the proxy whose error page they saw, and
//! the collector asks the `gw502-proxy` registry about it by this word.

vocabulary! {
    /// A reverse proxy kind (`ProxyConfig.kind`, `LogSignal.proxy`, the
    /// proxy fingerprints of `EdgeObservation.fingerprint`).
    ProxyKind {
        /// nginx.
        Nginx => "nginx",
        /// HAProxy.
        Haproxy => "haproxy",
        /// Apache httpd with mod_proxy.
        Apache => "apache",
        /// Caddy 2.
        Caddy => "caddy",
        /// Traefik v2/v3.
        Traefik => "traefik",
        /// Envoy.
        Envoy => "envoy",
        /// Varnish Cache, a caching hop in front of the proxy or the app.
        Varnish => "varnish",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for kind in ProxyKind::ALL {
            assert_eq!(kind.as_str().parse::<ProxyKind>(), Ok(*kind));
        }
        assert!("lighttpd".parse::<ProxyKind>().is_err());
    }
}
