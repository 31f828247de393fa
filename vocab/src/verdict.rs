//! The verdict vocabulary: hops, layers, causes and owners exactly as
//! TAXONOMY.md spells them. Each [`Cause`] belongs to one [`Layer`], which
//! gives its default [`Owner`].

use crate::UnknownWord;

vocabulary! {
    /// The hop that produced the status the visitor saw.
    Hop {
        /// A CDN or managed load balancer in front of the origin.
        Edge => "edge",
        /// The origin's reverse proxy (nginx, HAProxy, Apache, Caddy).
        Proxy => "proxy",
        /// The app or pool behind the proxy, relayed unchanged.
        Upstream => "upstream",
        /// A cache in the chain (Varnish), in front of the proxy or the app:
        /// its own `503 Backend fetch failed`.
        Cache => "cache",
        /// No HTTP answer at all, or nothing tells who answered.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// The hop at fault: where the fix lives.
    Layer {
        /// The visitor's own network path.
        Client => "client",
        /// CDN or managed load balancer.
        Edge => "edge",
        /// The origin's reverse proxy.
        Proxy => "proxy",
        /// The connection from proxy to upstream.
        Handoff => "handoff",
        /// The upstream process itself.
        Upstream => "upstream",
        /// The upstream's response bytes.
        Response => "response",
        /// Something the upstream depends on (DB, cache, API).
        Dependency => "dependency",
        /// The evidence does not say.
        Unknown => "unknown",
    }
}

vocabulary! {
    /// Escalation target for routing.
    Owner {
        /// The visitor's side.
        Customer => "customer",
        /// The CDN / load-balancer provider.
        Cdn => "cdn",
        /// Whoever runs proxies and hosts.
        Platform => "platform",
        /// Whoever runs the application.
        App => "app",
    }
}

vocabulary! {
    /// One TAXONOMY §2 cause; each belongs to exactly one [`Layer`].
    Cause {
        /// Only one vantage point sees errors.
        ClientPath => "client_path",
        /// The edge made the error itself while the origin answers.
        EdgeGenerated => "edge_generated",
        /// Edge to origin TLS fails while the origin is healthy.
        EdgeTlsToOrigin => "edge_tls_to_origin",
        /// The edge cannot resolve the origin name.
        EdgeOriginDns => "edge_origin_dns",
        /// The proxy is not running or not listening where the site expects.
        ProxyDown => "proxy_down",
        /// The proxy config test fails or a reload failed.
        ProxyConfigInvalid => "proxy_config_invalid",
        /// The proxy marked every upstream server down.
        NoLiveUpstreams => "no_live_upstreams",
        /// The proxy targets a port with no listener; the upstream listens on another.
        WrongPort => "wrong_port",
        /// The upstream listens on another address or family.
        BindMismatch => "bind_mismatch",
        /// The targeted unix socket is missing; the upstream listens on another path.
        WrongSocketPath => "wrong_socket_path",
        /// The proxy may not connect to the socket.
        SocketPermissionDenied => "socket_permission_denied",
        /// HTTP vs FastCGI vs uwsgi vs h2c disagree.
        ProtocolMismatch => "protocol_mismatch",
        /// https to a plain listener or plain to a TLS listener.
        TlsMismatch => "tls_mismatch",
        /// The upstream certificate is expired, untrusted or for another name.
        TlsCertificateError => "tls_certificate_error",
        /// The upstream name does not resolve.
        DnsFailure => "dns_failure",
        /// A live listener exists but the path drops or rejects.
        FirewallBlocked => "firewall_blocked",
        /// The upstream unit is inactive/failed and nothing listens.
        ServiceDown => "service_down",
        /// The upstream unit keeps restarting.
        CrashLoop => "crash_loop",
        /// The upstream process is alive but listens nowhere.
        NotListening => "not_listening",
        /// Accept backlog full or worker pool exhausted.
        Saturated => "saturated",
        /// Connected but no response header in time.
        Timeout => "timeout",
        /// The app itself sent the 5xx.
        UpstreamReturnedError => "upstream_returned_error",
        /// Response headers exceed the proxy buffers.
        HeaderTooBig => "header_too_big",
        /// Malformed or forbidden response headers.
        InvalidHeader => "invalid_header",
        /// The upstream closed before a full header.
        PrematureClose => "premature_close",
        /// The upstream reset the connection.
        ConnectionReset => "connection_reset",
        /// Bad chunked encoding or length mismatch after headers.
        InvalidBody => "invalid_body",
        /// The app is up but a dependency fails.
        DependencyFailure => "dependency_failure",
        /// The evidence does not support any cause.
        InsufficientEvidence => "insufficient_evidence",
    }
}

impl Cause {
    /// The layer this cause belongs to (TAXONOMY §2).
    pub fn layer(self) -> Layer {
        use Cause::*;
        match self {
            ClientPath => Layer::Client,
            EdgeGenerated | EdgeTlsToOrigin | EdgeOriginDns => Layer::Edge,
            ProxyDown | ProxyConfigInvalid | NoLiveUpstreams => Layer::Proxy,
            WrongPort
            | BindMismatch
            | WrongSocketPath
            | SocketPermissionDenied
            | ProtocolMismatch
            | TlsMismatch
            | TlsCertificateError
            | DnsFailure
            | FirewallBlocked => Layer::Handoff,
            ServiceDown
            | CrashLoop
            | NotListening
            | Saturated
            | Timeout
            | UpstreamReturnedError => Layer::Upstream,
            HeaderTooBig | InvalidHeader | PrematureClose | ConnectionReset | InvalidBody => {
                Layer::Response
            }
            DependencyFailure => Layer::Dependency,
            InsufficientEvidence => Layer::Unknown,
        }
    }

    /// The default escalation target (TAXONOMY §2): the layer's owner.
    pub fn owner(self) -> Owner {
        Owner::for_layer(self.layer())
    }

    /// The status this cause usually shows when nothing observed says
    /// otherwise: 504 for timeouts, 502 for the rest. An observed status
    /// always wins; a relayed 503 stays a 503.
    pub fn default_status(self) -> u16 {
        match self {
            Cause::Timeout => 504,
            _ => 502,
        }
    }

    /// Parses a `LogSignal.cause` field: one cause or a `|`-joined candidate
    /// set, in order and without repeats. Words this build does not know (a
    /// newer agent's) come back apart, so the caller can say so instead of
    /// dropping them silently.
    pub fn parse_set(field: &str) -> (Vec<Cause>, Vec<UnknownWord>) {
        let mut known = Vec::new();
        let mut unknown = Vec::new();
        for word in field.split('|').filter(|w| !w.trim().is_empty()) {
            match word.parse::<Cause>() {
                Ok(cause) if !known.contains(&cause) => known.push(cause),
                Ok(_) => {}
                Err(e) => unknown.push(e),
            }
        }
        (known, unknown)
    }

    /// Joins a candidate set into the `LogSignal.cause` wire form.
    pub fn join_set(causes: &[Cause]) -> String {
        causes
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("|")
    }
}

impl Owner {
    /// The default escalation target of a layer (TAXONOMY §2).
    pub fn for_layer(layer: Layer) -> Owner {
        match layer {
            Layer::Client => Owner::Customer,
            Layer::Edge => Owner::Cdn,
            Layer::Proxy | Layer::Handoff | Layer::Unknown => Owner::Platform,
            Layer::Upstream | Layer::Response | Layer::Dependency => Owner::App,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_round_trips_and_has_a_layer() {
        for cause in Cause::ALL {
            assert_eq!(cause.as_str().parse::<Cause>(), Ok(*cause));
            assert_eq!(cause.layer().as_str().parse::<Layer>(), Ok(cause.layer()));
            assert_eq!(cause.owner(), Owner::for_layer(cause.layer()));
        }
        assert!("502".parse::<Cause>().is_err());
        assert_eq!(Cause::Timeout.default_status(), 504);
        assert_eq!(Cause::ServiceDown.default_status(), 502);
    }

    #[test]
    fn every_layer_but_unknown_has_a_cause() {
        for layer in Layer::ALL {
            let causes = Cause::ALL.iter().filter(|c| c.layer() == *layer).count();
            assert!(causes > 0, "{layer} has no cause");
        }
    }

    #[test]
    fn candidate_sets_parse_in_order_and_report_unknown_words() {
        let (known, unknown) =
            Cause::parse_set("service_down|wrong_port|bogus|not_listening|wrong_port");
        assert_eq!(
            known,
            vec![Cause::ServiceDown, Cause::WrongPort, Cause::NotListening]
        );
        assert_eq!(unknown, vec![UnknownWord::new("Cause", "bogus")]);
        assert_eq!(Cause::parse_set(""), (vec![], vec![]));
        assert_eq!(
            Cause::join_set(&known),
            "service_down|wrong_port|not_listening"
        );
    }

    #[test]
    fn owners_default_by_layer() {
        assert_eq!(Owner::for_layer(Layer::Client), Owner::Customer);
        assert_eq!(Owner::for_layer(Layer::Edge), Owner::Cdn);
        assert_eq!(Owner::for_layer(Layer::Handoff), Owner::Platform);
        assert_eq!(Owner::for_layer(Layer::Dependency), Owner::App);
    }
}
