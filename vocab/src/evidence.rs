//! Where an evidence item came from: the `source` words of TAXONOMY §2.

vocabulary! {
    /// The source of one evidence item a verdict cites.
    Source {
        /// A probe of the public URL (collector or agent vantage) or an origin.
        EdgeProbe => "edge_probe",
        /// An agent's probe of an upstream target.
        DirectProbe => "direct_probe",
        /// A proxy error-log signal.
        ProxyLog => "proxy_log",
        /// Proxy access-log status counts.
        AccessLog => "access_log",
        /// systemd unit state.
        Systemd => "systemd",
        /// Listening sockets.
        Sockets => "sockets",
        /// Journal entries and unit events.
        Journal => "journal",
        /// Name resolution results.
        Dns => "dns",
        /// Parsed proxy configuration and its test.
        ProxyConfig => "proxy_config",
        /// Container engine state (docker inspect, docker logs).
        Containers => "containers",
    }
}
