//! The verdict vocabulary: hops, layers, causes and owners exactly as
//! TAXONOMY.md spells them, and the [`Verdict`] the engine returns.
//!
//! Every word here is a contract with users and routing rules, so the enums
//! carry their wire spelling (`as_str`), parse it back (`FromStr`) and convert
//! into the `gw502.v1.Verdict` message without any renaming on the way.

use std::fmt;
use std::str::FromStr;

use super::evidence::Evidence;

/// The words of one closed vocabulary: spelling, parsing and display.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every value, in TAXONOMY order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The exact TAXONOMY word.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($word => Ok($name::$variant),)+
                    other => Err(UnknownWord { kind: stringify!($name), word: other.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

/// A word that is not part of the TAXONOMY vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} word {word:?}")]
pub struct UnknownWord {
    /// Which vocabulary was asked (`Cause`, `Layer`, ...).
    pub kind: &'static str,
    /// The word that did not parse.
    pub word: String,
}

vocabulary! {
    /// The hop that produced the status the visitor saw.
    Hop {
        /// A CDN or managed load balancer in front of the origin.
        Edge => "edge",
        /// The origin's reverse proxy (nginx, HAProxy, Apache, Caddy).
        Proxy => "proxy",
        /// The app or pool behind the proxy, relayed unchanged.
        Upstream => "upstream",
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

    /// Parses a LogSignal cause field: one cause or a `|`-joined candidate set.
    /// Unknown words are skipped, so a newer agent's vocabulary degrades gracefully.
    pub fn parse_set(field: &str) -> Vec<Cause> {
        let mut out = Vec::new();
        for word in field.split('|') {
            if let Ok(cause) = word.parse::<Cause>()
                && !out.contains(&cause)
            {
                out.push(cause);
            }
        }
        out
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

/// The "last deploy" answer: a change on the affected host shortly before the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    /// Host the change happened on.
    pub host: String,
    /// unit_start, unit_stop, unit_restart, unit_reload or config_change.
    pub kind: String,
    /// The unit name or the proxy config that changed.
    pub subject: String,
    /// When it happened (epoch ms).
    pub at_ms: i64,
}

/// One attribution of a site's failure to a layer and cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The host at fault, when the fault is on one origin host.
    pub host: Option<String>,
    /// The hop that produced the status the visitor saw.
    pub emitted_by: Hop,
    /// The hop at fault; always `cause.layer()`.
    pub layer: Layer,
    /// The cause in TAXONOMY words.
    pub cause: Cause,
    /// The status that was observed; 0 when no HTTP answer came at all.
    pub status: u16,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The one thing an operator should look at next.
    pub next_check: String,
    /// Escalation target (layer default).
    pub owner: Owner,
    /// A unit or config change shortly before the failure.
    pub recent_change: Option<RecentChange>,
    /// The items the rules used.
    pub evidence: Vec<Evidence>,
    /// One sentence for people.
    pub summary: String,
    /// What evidence was missing or unavailable.
    pub missing: Vec<String>,
}

impl From<&RecentChange> for gw502_proto::v1::RecentChange {
    fn from(c: &RecentChange) -> Self {
        Self {
            host: c.host.clone(),
            kind: c.kind.clone(),
            subject: c.subject.clone(),
            at_ms: c.at_ms,
        }
    }
}

impl From<&Verdict> for gw502_proto::v1::Verdict {
    fn from(v: &Verdict) -> Self {
        Self {
            emitted_by: v.emitted_by.as_str().to_string(),
            layer: v.layer.as_str().to_string(),
            cause: v.cause.as_str().to_string(),
            status: u32::from(v.status),
            confidence: v.confidence,
            next_check: v.next_check.clone(),
            owner: v.owner.as_str().to_string(),
            recent_change: v.recent_change.as_ref().map(Into::into),
            evidence: v.evidence.iter().map(Into::into).collect(),
            summary: v.summary.clone(),
            missing: v.missing.clone(),
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
        }
        assert_eq!(Cause::ALL.len(), 29);
        assert!("502".parse::<Cause>().is_err());
    }

    #[test]
    fn candidate_sets_parse_in_order_and_skip_unknown_words() {
        assert_eq!(
            Cause::parse_set("service_down|wrong_port|bogus|not_listening|wrong_port"),
            vec![Cause::ServiceDown, Cause::WrongPort, Cause::NotListening]
        );
        assert!(Cause::parse_set("").is_empty());
    }

    #[test]
    fn owners_default_by_layer() {
        assert_eq!(Owner::for_layer(Layer::Client), Owner::Customer);
        assert_eq!(Owner::for_layer(Layer::Edge), Owner::Cdn);
        assert_eq!(Owner::for_layer(Layer::Handoff), Owner::Platform);
        assert_eq!(Owner::for_layer(Layer::Dependency), Owner::App);
    }
}
