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

    /// Whether a probe that ended with `outcome` and `status` failed: a 5xx, or no HTTP
    /// answer (an outcome word this build does not know counts as none). A probe the
    /// SSRF guard refused was never sent and fails nothing.
    pub fn fails(outcome: Option<Outcome>, status: u32) -> bool {
        match outcome {
            Some(Outcome::Blocked) => false,
            Some(Outcome::Ok) => status >= 500,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn a_probe_fails_on_a_5xx_or_no_answer_never_when_it_was_not_sent() {
        assert!(!Outcome::fails(Some(Outcome::Ok), 404));
        assert!(Outcome::fails(Some(Outcome::Ok), 502));
        assert!(Outcome::fails(Some(Outcome::Refused), 0));
        assert!(Outcome::fails(None, 0), "an unknown word is no answer");
        assert!(!Outcome::fails(Some(Outcome::Blocked), 0));
    }
}
