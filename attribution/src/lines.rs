//! Candidate causes from a raw proxy error line, for signals whose `cause`
//! field is empty (an older agent), and from probe outcomes.
//!
//! Log lines are classified by the one classifier of each proxy in
//! `gw502-proxy`, the code the agent runs, so the two sides cannot drift.
//! Like the agent, it returns a candidate set when the line alone cannot
//! decide; the layer rules resolve the set with sockets and systemd.

use gw502_vocab::{Outcome, Phase};

use super::verdict::Cause;

use Cause::*;

/// Candidate causes for a signal whose cause field is empty, from its raw
/// sample line: the same `gw502-proxy` classifier the agent runs, for the
/// signal's proxy kind. Empty for a kind that names no proxy, a line of
/// another shape, or a line that is no 5xx evidence.
pub(crate) fn sample_candidates(proxy: &str, sample: &str) -> Vec<Cause> {
    gw502_proxy::by_word(proxy)
        .and_then(|p| p.parse_error_line(sample.as_bytes()))
        .map(|l| l.cause.to_vec())
        .unwrap_or_default()
}

/// Candidate causes for a failed probe's outcome (docs/PROBES.md); the
/// phase and the detail's prefix narrow timeouts and TLS failures.
pub(crate) fn probe_candidates(outcome: Outcome, phase: Option<Phase>, detail: &str) -> Vec<Cause> {
    let d = detail.trim_start();
    match outcome {
        Outcome::Refused => vec![ServiceDown, WrongPort, NotListening, BindMismatch],
        Outcome::Timeout if phase == Some(Phase::Connect) => vec![FirewallBlocked],
        Outcome::Timeout => vec![Timeout],
        Outcome::NoSuchSocket => vec![WrongSocketPath, ServiceDown],
        Outcome::PermissionDenied => vec![SocketPermissionDenied],
        Outcome::Unreachable => vec![FirewallBlocked],
        Outcome::Saturated => vec![Saturated],
        Outcome::DnsError => vec![DnsFailure],
        Outcome::TlsError if d.starts_with("plaintext_peer:") => vec![TlsMismatch],
        Outcome::TlsError if d.starts_with("certificate_") => vec![TlsCertificateError],
        Outcome::TlsError => vec![TlsMismatch, TlsCertificateError],
        Outcome::ProtocolMismatch if d.starts_with("tls_peer:") => vec![TlsMismatch],
        Outcome::ProtocolMismatch => vec![ProtocolMismatch],
        Outcome::InvalidResponse => vec![InvalidHeader, ProtocolMismatch],
        Outcome::HeaderTooBig => vec![HeaderTooBig],
        Outcome::PrematureClose => vec![PrematureClose],
        Outcome::Reset => vec![ConnectionReset],
        Outcome::Ok | Outcome::Blocked => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_classified_by_their_proxy() {
        let refused = "2024/05/01 10:00:00 [error] 811#811: *7 connect() failed (111: Connection refused) while connecting to upstream, client: 10.77.0.1, server: shop.example, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:3000/\", host: \"shop.example\"";
        assert_eq!(
            sample_candidates("nginx", refused),
            vec![ServiceDown, WrongPort, NotListening]
        );
        let emerg = "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12";
        assert_eq!(sample_candidates("nginx", emerg), vec![ProxyConfigInvalid]);
        // Caddy's dial timeout: the same answer the agent gives.
        let caddy = r#"{"level":"error","ts":1795636215.5,"logger":"http.log.error","msg":"dial tcp 10.0.0.9:80: i/o timeout","status":502}"#;
        assert_eq!(sample_candidates("caddy", caddy), vec![FirewallBlocked]);
        assert!(sample_candidates("nginx", "GET / 200").is_empty());
        assert!(sample_candidates("traefik", refused).is_empty());
    }

    #[test]
    fn probe_outcomes_use_detail_prefixes() {
        assert_eq!(
            probe_candidates(
                Outcome::TlsError,
                Some(Phase::Tls),
                "plaintext_peer: http/1.1 400"
            ),
            vec![TlsMismatch]
        );
        assert_eq!(
            probe_candidates(
                Outcome::ProtocolMismatch,
                Some(Phase::Response),
                "tls_peer: alert"
            ),
            vec![TlsMismatch]
        );
        assert_eq!(
            probe_candidates(Outcome::Timeout, Some(Phase::Connect), ""),
            vec![FirewallBlocked]
        );
        assert_eq!(probe_candidates(Outcome::Timeout, None, ""), vec![Timeout]);
        assert!(probe_candidates(Outcome::Ok, None, "").is_empty());
    }
}
