//! How one probe attempt ended: the `outcome` and `phase` words of
//! docs/PROBES.md, spoken by the agent's direct probes, the collector's edge
//! probes and the attribution rules alike.

vocabulary! {
    /// How one probe attempt ended.
    Outcome {
        /// A complete response head arrived.
        Ok => "ok",
        /// ECONNREFUSED on connect.
        Refused => "refused",
        /// No answer in time; the phase says where.
        Timeout => "timeout",
        /// The unix socket path is missing (ENOENT).
        NoSuchSocket => "no_such_socket",
        /// The unix socket is not connectable (EACCES/EPERM).
        PermissionDenied => "permission_denied",
        /// EHOSTUNREACH / ENETUNREACH.
        Unreachable => "unreachable",
        /// Unix connect EAGAIN: the accept backlog is full.
        Saturated => "saturated",
        /// The host name did not resolve.
        DnsError => "dns_error",
        /// The TLS handshake failed or the certificate would not verify.
        TlsError => "tls_error",
        /// The peer speaks another protocol.
        ProtocolMismatch => "protocol_mismatch",
        /// Bytes came back but not a valid response head.
        InvalidResponse => "invalid_response",
        /// The response head exceeded the limit.
        HeaderTooBig => "header_too_big",
        /// The peer closed before a complete response head.
        PrematureClose => "premature_close",
        /// ECONNRESET after connecting.
        Reset => "reset",
        /// Refused by the SSRF guard; nothing was sent.
        Blocked => "blocked",
    }
}

vocabulary! {
    /// Where in the exchange a probe stopped.
    Phase {
        /// Name resolution and connect.
        Connect => "connect",
        /// The TLS handshake.
        Tls => "tls",
        /// Writing the request.
        Request => "request",
        /// Reading the response head.
        Response => "response",
    }
}

impl Outcome {
    /// Whether a response head arrived.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}
