//! Candidate causes from a raw proxy error line, for signals whose `cause`
//! field is empty (an older agent, or a line its parser did not label).
//!
//! The fragments are the ones TAXONOMY.md §3 lists for nginx, HAProxy, Apache
//! and Caddy. Like the agent, this returns a candidate set when the line alone
//! cannot decide; the layer rules resolve the set with sockets and systemd.

use gw502_vocab::{Outcome, Phase};

use super::verdict::Cause;

use Cause::*;

/// Ordered fragment table: first match wins, so specific phrases come first.
const FRAGMENTS: &[(&str, &[Cause])] = &[
    ("no live upstreams", &[NoLiveUpstreams]),
    ("has no server available", &[NoLiveUpstreams]),
    ("no upstreams available", &[NoLiveUpstreams]),
    ("could not be resolved", &[DnsFailure]),
    ("no resolver defined", &[DnsFailure]),
    ("while resolving", &[DnsFailure]),
    ("no such host", &[DnsFailure]),
    ("wrong version number", &[TlsMismatch]),
    ("certificate verify", &[TlsCertificateError]),
    ("certificate does not match", &[TlsCertificateError]),
    ("x509:", &[TlsCertificateError]),
    ("unsupported fastcgi protocol", &[ProtocolMismatch]),
    ("no valid http/1.0 header", &[ProtocolMismatch, TlsMismatch]),
    ("too big header", &[HeaderTooBig]),
    ("header size is over the limit", &[HeaderTooBig]),
    ("invalid chunked", &[InvalidBody]),
    (
        "prematurely closed connection while reading upstream",
        &[InvalidBody],
    ),
    ("invalid header", &[InvalidHeader]),
    ("duplicate header", &[InvalidHeader]),
    ("prematurely closed", &[PrematureClose]),
    ("error reading status line", &[PrematureClose]),
    ("connection reset by peer", &[ConnectionReset]),
    (
        "timed out (110: connection timed out) while connecting",
        &[FirewallBlocked],
    ),
    ("timeout awaiting response", &[Timeout]),
    ("i/o timeout", &[FirewallBlocked]),
    ("timed out", &[Timeout]),
    ("no route to host", &[FirewallBlocked]),
    ("network is unreachable", &[FirewallBlocked]),
    ("(13: permission denied)", &[SocketPermissionDenied]),
    ("permission denied", &[SocketPermissionDenied]),
    ("resource temporarily unavailable", &[Saturated]),
    ("pm.max_children", &[Saturated]),
    (
        "(2: no such file or directory)",
        &[WrongSocketPath, ServiceDown],
    ),
    ("no such file or directory", &[WrongSocketPath, ServiceDown]),
    (
        "connection refused",
        &[ServiceDown, WrongPort, NotListening],
    ),
    ("timeout", &[Timeout]),
];

/// Whether the line's own level (not text inside it) is `[emerg]`, as in
/// `2024/05/01 09:58:00 [emerg] 1234#1234: ...` or `nginx: [emerg] ...`.
pub(crate) fn level_is_emerg(line: &str) -> bool {
    line.split_whitespace().take(3).any(|w| w == "[emerg]")
}

/// Candidate causes for one error line; empty when it names no known failure.
pub(crate) fn classify(line: &str) -> Vec<Cause> {
    if level_is_emerg(line) {
        return vec![ProxyConfigInvalid];
    }
    let lower = line.to_ascii_lowercase();
    FRAGMENTS
        .iter()
        .find(|(f, _)| lower.contains(f))
        .map(|(_, c)| c.to_vec())
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
    fn nginx_lines_map_to_taxonomy_candidates() {
        let refused = "2024/05/01 10:00:00 [error] 811#811: *7 connect() failed (111: Connection refused) while connecting to upstream, client: 10.77.0.1, server: shop.example, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:3000/\", host: \"shop.example\"";
        assert_eq!(
            classify(refused),
            vec![ServiceDown, WrongPort, NotListening]
        );
        let drop = "upstream timed out (110: Connection timed out) while connecting to upstream";
        assert_eq!(classify(drop), vec![FirewallBlocked]);
        let slow = "upstream timed out (110: Connection timed out) while reading response header from upstream";
        assert_eq!(classify(slow), vec![Timeout]);
        let body = "upstream prematurely closed connection while reading upstream";
        assert_eq!(classify(body), vec![InvalidBody]);
        assert_eq!(
            classify("upstream prematurely closed FastCGI stdout"),
            vec![PrematureClose]
        );
        assert!(classify("GET / 200").is_empty());
        let emerg = "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12";
        assert_eq!(classify(emerg), vec![ProxyConfigInvalid]);
        assert_eq!(
            classify("upstream sent invalid header: \"X: [emerg]\""),
            vec![InvalidHeader]
        );
    }

    #[test]
    fn haproxy_apache_caddy_lines() {
        assert_eq!(
            classify("backend app has no server available!"),
            vec![NoLiveUpstreams]
        );
        assert_eq!(
            classify("AH10124: header size is over the limit"),
            vec![HeaderTooBig]
        );
        assert_eq!(
            classify("dial tcp 127.0.0.1:4040: connect: connection refused"),
            vec![ServiceDown, WrongPort, NotListening]
        );
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
