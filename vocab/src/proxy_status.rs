//! The error types of RFC 9209 `Proxy-Status`, and the cause each one names.
//!
//! A hop that sends `Proxy-Status: <proxy>; error=<type>` says in a
//! standard word why it could not use what the next hop gave it; most types
//! map one-to-one onto a handoff or response cause. The match in
//! [`ProxyStatusError::causes`] is exhaustive, so a type added here cannot be
//! left without a meaning. The header itself is parsed in [`header`].

use crate::Cause;

mod header;
#[cfg(test)]
mod recorded_tests;

pub use header::{BadProxyStatus, ProxyStatus, first_error, parse};

vocabulary! {
    /// One error type of RFC 9209 §2.3, spelled as on the wire.
    ProxyStatusError {
        /// The next hop's name did not resolve in time.
        DnsTimeout => "dns_timeout",
        /// The next hop's name did not resolve.
        DnsError => "dns_error",
        /// The intermediary found no next hop for the request.
        DestinationNotFound => "destination_not_found",
        /// The next hop is considered unavailable (health checks).
        DestinationUnavailable => "destination_unavailable",
        /// The next hop's address is prohibited by policy.
        DestinationIpProhibited => "destination_ip_prohibited",
        /// The next hop's address is unroutable.
        DestinationIpUnroutable => "destination_ip_unroutable",
        /// The next hop refused the connection.
        ConnectionRefused => "connection_refused",
        /// The connection to the next hop closed unexpectedly.
        ConnectionTerminated => "connection_terminated",
        /// Connecting to the next hop timed out.
        ConnectionTimeout => "connection_timeout",
        /// Reading from the next hop timed out.
        ConnectionReadTimeout => "connection_read_timeout",
        /// Writing to the next hop timed out.
        ConnectionWriteTimeout => "connection_write_timeout",
        /// The intermediary's limit of connections to the next hop is reached.
        ConnectionLimitReached => "connection_limit_reached",
        /// The TLS handshake with the next hop failed.
        TlsProtocolError => "tls_protocol_error",
        /// The next hop's certificate did not verify.
        TlsCertificateError => "tls_certificate_error",
        /// The next hop sent a TLS alert.
        TlsAlertReceived => "tls_alert_received",
        /// The request could not be sent to the next hop.
        HttpRequestError => "http_request_error",
        /// The next hop denied the request.
        HttpRequestDenied => "http_request_denied",
        /// The next hop's response was incomplete.
        HttpResponseIncomplete => "http_response_incomplete",
        /// The response header section was too large.
        HttpResponseHeaderSectionSize => "http_response_header_section_size",
        /// One response header was too large.
        HttpResponseHeaderSize => "http_response_header_size",
        /// The response body was too large.
        HttpResponseBodySize => "http_response_body_size",
        /// The response trailer section was too large.
        HttpResponseTrailerSectionSize => "http_response_trailer_section_size",
        /// One response trailer was too large.
        HttpResponseTrailerSize => "http_response_trailer_size",
        /// The response's transfer coding was bad.
        HttpResponseTransferCoding => "http_response_transfer_coding",
        /// The response's content coding was bad.
        HttpResponseContentCoding => "http_response_content_coding",
        /// No response from the next hop in time.
        HttpResponseTimeout => "http_response_timeout",
        /// The protocol upgrade with the next hop failed.
        HttpUpgradeFailed => "http_upgrade_failed",
        /// The next hop broke the HTTP protocol.
        HttpProtocolError => "http_protocol_error",
        /// The intermediary answered itself (e.g. a cached error).
        ProxyInternalResponse => "proxy_internal_response",
        /// The intermediary failed internally.
        ProxyInternalError => "proxy_internal_error",
        /// The intermediary is misconfigured.
        ProxyConfigurationError => "proxy_configuration_error",
        /// The intermediary detected a forwarding loop.
        ProxyLoopDetected => "proxy_loop_detected",
    }
}

impl ProxyStatusError {
    /// The causes this error type names, most specific first; empty when it
    /// says nothing about the hop behind (a refused request, an answer the
    /// intermediary made up itself).
    pub fn causes(self) -> &'static [Cause] {
        use Cause::*;
        use ProxyStatusError as E;
        match self {
            E::DnsTimeout | E::DnsError => &[DnsFailure],
            E::DestinationNotFound | E::ProxyConfigurationError | E::ProxyLoopDetected => {
                &[ProxyConfigInvalid]
            }
            E::DestinationUnavailable => &[NoLiveUpstreams],
            E::DestinationIpProhibited | E::DestinationIpUnroutable | E::ConnectionTimeout => {
                &[FirewallBlocked]
            }
            E::ConnectionRefused => &[ServiceDown, WrongPort, NotListening],
            E::ConnectionTerminated | E::HttpResponseIncomplete => &[PrematureClose],
            E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout => {
                &[Timeout]
            }
            E::ConnectionLimitReached => &[Saturated],
            E::TlsProtocolError | E::TlsAlertReceived => &[TlsMismatch, TlsCertificateError],
            E::TlsCertificateError => &[TlsCertificateError],
            E::HttpResponseHeaderSectionSize | E::HttpResponseHeaderSize => &[HeaderTooBig],
            E::HttpResponseBodySize
            | E::HttpResponseTrailerSectionSize
            | E::HttpResponseTrailerSize
            | E::HttpResponseTransferCoding
            | E::HttpResponseContentCoding => &[InvalidBody],
            E::HttpUpgradeFailed => &[ProtocolMismatch],
            E::HttpProtocolError => &[InvalidHeader, ProtocolMismatch],
            E::HttpRequestError
            | E::HttpRequestDenied
            | E::ProxyInternalResponse
            | E::ProxyInternalError => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rfc_9209_error_type_is_known_and_the_issue_examples_map() {
        // RFC 9209 §2.3 registers 32 error types.
        assert_eq!(ProxyStatusError::ALL.len(), 32);
        let cause = |w: &str| w.parse::<ProxyStatusError>().unwrap().causes()[0];
        assert_eq!(cause("connection_refused"), Cause::ServiceDown);
        assert_eq!(cause("connection_timeout"), Cause::FirewallBlocked);
        assert_eq!(cause("destination_ip_unroutable"), Cause::FirewallBlocked);
        assert_eq!(cause("tls_certificate_error"), Cause::TlsCertificateError);
        assert_eq!(
            cause("http_response_header_section_size"),
            Cause::HeaderTooBig
        );
        assert_eq!(cause("dns_error"), Cause::DnsFailure);
        assert_eq!(cause("http_response_timeout"), Cause::Timeout);
        assert!("not_an_error".parse::<ProxyStatusError>().is_err());
    }

    #[test]
    fn a_cause_named_by_an_error_type_keeps_to_handoff_response_upstream_or_proxy() {
        use crate::Layer;
        for e in ProxyStatusError::ALL {
            for c in e.causes() {
                assert!(
                    matches!(
                        c.layer(),
                        Layer::Proxy | Layer::Handoff | Layer::Upstream | Layer::Response
                    ),
                    "{e} names {c}"
                );
            }
        }
    }
}
