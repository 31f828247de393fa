//! The cause of every fixture log line, derived by running the registry's
//! own parser for that proxy on the line (nothing is labelled by hand
//! beside the line: each row names a fragment that finds its line and the
//! cause the parser must give it), grouped per proxy, and a cross-check that
//! no two proxies disagree on the same transport failure.
//!
//! nginx, HAProxy, Apache and Varnish lines are captured from the real
//! software (`proxy/fixtures/*/README.md`; Varnish's are the `FetchError`
//! records of `varnishlog`), Traefik and Envoy lines from their real release
//! binaries run on loopback (not in the lab); Caddy is not packaged here, so
//! its lines are documented shapes (`proxy/fixtures/caddy/README.md`).

use std::collections::BTreeMap;

use gw502_proxy::line::{BAD_HEADER, CLOSED_OR_RESET, NO_SOCKET, NOT_HTTP, REFUSED};

/// Envoy's `UPE`: the answer was not HTTP or its header broke a limit.
const UPE: &[Cause] = &[ProtocolMismatch, InvalidHeader, HeaderTooBig];
use gw502_proxy::{ErrorLine, ProxyKind, proxy, traefik};
use gw502_vocab::Cause::{self, *};

const NGINX: &str = include_str!("../fixtures/nginx/error.log");
const HAPROXY: &str = include_str!("../fixtures/haproxy/haproxy.log");
const APACHE: &str = include_str!("../fixtures/apache/error.log");
const CADDY: &str = include_str!("../fixtures/caddy/error.log");
/// Both log formats and the JSON access log, one after the other.
const TRAEFIK: &str = concat!(
    include_str!("../fixtures/traefik/traefik.log"),
    include_str!("../fixtures/traefik/traefik.json.log"),
    include_str!("../fixtures/traefik/access.json.log"),
);
/// The default text format, then the `json_format` logger.
const ENVOY: &str = concat!(
    include_str!("../fixtures/envoy/access.log"),
    include_str!("../fixtures/envoy/access.json.log"),
);
const VARNISH: &str = include_str!("../fixtures/varnish/varnishlog-fetcherror.txt");

/// One transport failure, as each proxy reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    ConnectRefused,
    NoSocket,
    ReadTimeout,
    Reset,
    ClosedBeforeHeader,
    OversizedHeader,
    NothingUp,
}

/// (fragment that finds the line, cause, status, transport failure it shows).
type Row = (&'static str, &'static [Cause], u16, Option<Failure>);

fn fixture(kind: ProxyKind) -> &'static str {
    match kind {
        ProxyKind::Nginx => NGINX,
        ProxyKind::Haproxy => HAPROXY,
        ProxyKind::Apache => APACHE,
        ProxyKind::Caddy => CADDY,
        ProxyKind::Traefik => TRAEFIK,
        ProxyKind::Envoy => ENVOY,
        ProxyKind::Varnish => VARNISH,
    }
}

fn rows(kind: ProxyKind) -> Vec<Row> {
    use Failure::*;
    match kind {
        ProxyKind::Nginx => vec![
            ("/refused HTTP", REFUSED, 502, Some(ConnectRefused)),
            ("(2: No such file", NO_SOCKET, 502, Some(NoSocket)),
            (
                "(13: Permission denied)",
                &[SocketPermissionDenied],
                502,
                None,
            ),
            ("(11: Resource temporarily", &[Saturated], 502, None),
            ("unsupported FastCGI", &[ProtocolMismatch], 502, None),
            (
                "prematurely closed connection while reading response header",
                &[PrematureClose],
                502,
                Some(ClosedBeforeHeader),
            ),
            (
                "too big header",
                &[HeaderTooBig],
                502,
                Some(OversizedHeader),
            ),
            (
                "(104: Connection reset by peer)",
                &[ConnectionReset],
                502,
                Some(Reset),
            ),
            ("upstream timed out", &[Timeout], 504, Some(ReadTimeout)),
            ("no valid HTTP/1.0 header", NOT_HTTP, 502, None),
            ("SSL_do_handshake", &[TlsMismatch], 502, None),
            ("upstream sent invalid header", &[InvalidHeader], 502, None),
            ("invalid chunked", &[InvalidBody], 502, None),
            (
                "no live upstreams",
                &[NoLiveUpstreams],
                502,
                Some(NothingUp),
            ),
            ("could not be resolved", &[DnsFailure], 502, None),
            ("[emerg]", &[ProxyConfigInvalid], 0, None),
        ],
        ProxyKind::Haproxy => vec![
            ("is DOWN", REFUSED, 0, None),
            ("SC-- 1/1/0/0/3", REFUSED, 503, Some(ConnectRefused)),
            (
                "has no server available",
                &[NoLiveUpstreams],
                503,
                Some(NothingUp),
            ),
            (
                "/premature HTTP",
                CLOSED_OR_RESET,
                502,
                Some(ClosedBeforeHeader),
            ),
            ("/reset HTTP", CLOSED_OR_RESET, 502, Some(Reset)),
            ("/hang HTTP", &[Timeout], 504, Some(ReadTimeout)),
            ("PH--", BAD_HEADER, 502, Some(OversizedHeader)),
            ("sQ--", &[Saturated], 503, None),
            (" 200 51 ", &[], 200, None),
        ],
        ProxyKind::Apache => vec![
            (
                "(111)Connection refused",
                REFUSED,
                503,
                Some(ConnectRefused),
            ),
            ("missing.sock", NO_SOCKET, 503, Some(NoSocket)),
            ("missing-fpm.sock", NO_SOCKET, 503, Some(NoSocket)),
            // `capture.py` prints what the client got: `hang HTTP Error 502: Proxy Error`.
            ("(70007)", &[Timeout], 502, Some(ReadTimeout)),
            (
                "(104)Connection reset",
                &[ConnectionReset],
                502,
                Some(Reset),
            ),
            ("(20014)", &[PrematureClose], 502, Some(ClosedBeforeHeader)),
            ("AH10124", &[HeaderTooBig], 502, Some(OversizedHeader)),
            ("AH01114", &[], 0, None),
            ("AH00898", &[], 0, None),
        ],
        ProxyKind::Caddy => vec![
            ("connection refused", REFUSED, 502, Some(ConnectRefused)),
            ("dial unix", NO_SOCKET, 502, Some(NoSocket)),
            ("i/o timeout", &[FirewallBlocked], 502, None),
            (
                "timeout awaiting response headers",
                &[Timeout],
                504,
                Some(ReadTimeout),
            ),
            (
                "connection reset by peer",
                &[ConnectionReset],
                502,
                Some(Reset),
            ),
            (
                "\"msg\":\"EOF\"",
                &[PrematureClose],
                502,
                Some(ClosedBeforeHeader),
            ),
            (
                "no upstreams available",
                &[NoLiveUpstreams],
                503,
                Some(NothingUp),
            ),
        ],
        ProxyKind::Traefik => vec![
            (
                "> 502 Bad Gateway error=\"dial tcp",
                REFUSED,
                502,
                Some(ConnectRefused),
            ),
            (
                "timeout awaiting response headers",
                &[Timeout],
                504,
                Some(ReadTimeout),
            ),
            (
                "error=EOF",
                &[PrematureClose],
                502,
                Some(ClosedBeforeHeader),
            ),
            ("\"error\":\"EOF\"", &[PrematureClose], 502, None),
            (
                "connection reset by peer",
                &[ConnectionReset],
                502,
                Some(Reset),
            ),
            ("malformed HTTP response", NOT_HTTP, 500, None),
            ("x509:", &[TlsCertificateError], 500, None),
            (
                "does not look like a TLS handshake",
                &[TlsMismatch],
                500,
                None,
            ),
            ("Health check failed.", REFUSED, 0, None),
            ("Propagating new DOWN status", &[NoLiveUpstreams], 0, None),
            (
                "\"RequestHost\":\"down.test\"",
                &[NoLiveUpstreams],
                503,
                Some(NothingUp),
            ),
            ("\"RequestHost\":\"hang.test\"", &[Timeout], 504, None),
            (
                "\"RequestHost\":\"refused.test\"",
                traefik::log::DIAL_OR_READ,
                502,
                None,
            ),
            (
                "\"RequestHost\":\"plain.test\"",
                traefik::log::TLS_OR_NOT_HTTP,
                500,
                None,
            ),
            ("\"RequestHost\":\"busy.test\"", &[], 503, None),
            ("\"DownstreamStatus\":200", &[], 200, None),
        ],
        ProxyKind::Envoy => vec![
            ("503 UF ", REFUSED, 503, Some(ConnectRefused)),
            ("504 UT ", &[Timeout], 504, Some(ReadTimeout)),
            (
                "\"eof.test\"",
                CLOSED_OR_RESET,
                503,
                Some(ClosedBeforeHeader),
            ),
            ("\"reset.test\"", CLOSED_OR_RESET, 503, Some(Reset)),
            ("\"garbage.test\"", UPE, 502, None),
            ("\"bigheader.test\"", UPE, 502, Some(OversizedHeader)),
            ("503 UH ", &[NoLiveUpstreams], 503, Some(NothingUp)),
            ("URX,UF", REFUSED, 503, None),
            ("404 NR ", &[ProxyConfigInvalid], 404, None),
            ("503 UO ", &[Saturated], 503, None),
            ("0 DC ", &[], 0, None),
            ("\"busy.test\"", &[], 503, None),
            (
                "CERTIFICATE_VERIFY_FAILED",
                &[TlsCertificateError],
                503,
                None,
            ),
            ("WRONG_VERSION_NUMBER", &[TlsMismatch], 503, None),
            (
                "delayed_connect_error:_Connection_refused",
                REFUSED,
                503,
                Some(ConnectRefused),
            ),
            ("\"response_flags\":\"UT\"", &[Timeout], 504, None),
        ],
        ProxyKind::Varnish => vec![
            ("fail errno 111", REFUSED, 503, Some(ConnectRefused)),
            ("first byte timeout", &[Timeout], 503, Some(ReadTimeout)),
            ("HTC eof", CLOSED_OR_RESET, 503, Some(ClosedBeforeHeader)),
            ("overflow", &[HeaderTooBig], 503, Some(OversizedHeader)),
            ("unhealthy", &[NoLiveUpstreams], 503, Some(NothingUp)),
            (
                "backend write error: 104",
                &[ConnectionReset],
                503,
                Some(Reset),
            ),
            ("straight insufficient bytes", &[InvalidBody], 0, None),
            ("Could not get storage", &[], 0, None),
        ],
    }
}

fn parse(kind: ProxyKind, line: &str) -> ErrorLine {
    proxy(kind)
        .parse_error_line(line.as_bytes())
        .unwrap_or_else(|| panic!("{kind}: unparsed fixture line: {line}"))
}

#[test]
fn every_fixture_line_parses_with_its_proxy() {
    for kind in ProxyKind::ALL {
        let lines: Vec<&str> = fixture(*kind).lines().collect();
        assert!(!lines.is_empty(), "{kind} has no fixture lines");
        for line in lines {
            let l = parse(*kind, line);
            for cause in l.cause {
                assert!(Cause::ALL.contains(cause));
            }
        }
    }
}

#[test]
fn each_fixture_line_has_the_cause_its_parser_derives() {
    for kind in ProxyKind::ALL {
        for (fragment, cause, status, _) in rows(*kind) {
            let line = fixture(*kind)
                .lines()
                .find(|l| l.contains(fragment))
                .unwrap_or_else(|| panic!("{kind}: no fixture line contains {fragment:?}"));
            let l = parse(*kind, line);
            assert_eq!((l.cause, l.status), (cause, status), "{kind}: {line}");
        }
    }
}

#[test]
fn no_two_proxies_disagree_on_a_transport_failure() {
    let mut seen: BTreeMap<Failure, Vec<(ProxyKind, &'static [Cause])>> = BTreeMap::new();
    for kind in ProxyKind::ALL {
        for (_, cause, _, failure) in rows(*kind) {
            if let Some(f) = failure {
                seen.entry(f).or_default().push((*kind, cause));
            }
        }
    }
    for (failure, answers) in &seen {
        assert!(
            answers.len() >= 3,
            "{failure:?} is covered by too few proxies: {answers:?}"
        );
        // Every pair shares a candidate: a narrower answer is no disagreement.
        for (a, ca) in answers {
            for (b, cb) in answers {
                assert!(
                    ca.iter().any(|c| cb.contains(c)),
                    "{failure:?}: {a} says {ca:?}, {b} says {cb:?}"
                );
            }
        }
    }
}

/// A connect timeout needs a dropping firewall, which the capture hosts do
/// not have: these are the documented shapes (TAXONOMY §3, HAProxy `sC`,
/// Apache `(110)`), and every proxy must call it `firewall_blocked`, never
/// `timeout` (the drift the collector's own table once had for Caddy).
#[test]
fn connect_timeouts_are_firewall_blocked_everywhere() {
    let shapes = [
        (
            ProxyKind::Nginx,
            "2026/11/25 19:50:15 [error] 7#7: *1 upstream timed out (110: Connection timed out) while connecting to upstream, client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.9:80/\", host: \"s\"",
        ),
        (
            ProxyKind::Haproxy,
            "127.0.0.1:5 [25/Nov/2026:19:50:40.478] web app/app1 0/0/-1/-1/3001 503 217 - - sC-- 1/1/0/0/3 0/0 \"GET / HTTP/1.1\"",
        ),
        (
            ProxyKind::Apache,
            "[Wed Nov 25 19:50:15.1 2026] [proxy:error] [pid 9] (110)Connection timed out: AH00957: http: attempt to connect to 10.0.0.9:80 (10.0.0.9:80) failed",
        ),
        (
            ProxyKind::Caddy,
            r#"{"level":"error","ts":1795636217.5,"logger":"http.log.error","msg":"dial tcp 10.0.0.9:80: i/o timeout","status":502}"#,
        ),
        (
            ProxyKind::Traefik,
            r#"2026-12-01T19:37:01Z DBG github.com/traefik/traefik/v3/pkg/proxy/httputil/proxy.go:199 > 504 Gateway Timeout error="dial tcp 10.0.0.9:80: i/o timeout""#,
        ),
        // Envoy's connect timeout, as a TLS handshake that never answered
        // gave it in an earlier capture run (proxy/fixtures/envoy/README.md).
        (
            ProxyKind::Envoy,
            r#"{"response_code":"503","response_flags":"UF","response_code_details":"upstream_reset_before_response_started{connection_timeout}","authority":"plain.test"}"#,
        ),
        (
            ProxyKind::Varnish,
            "--  FetchError     backend default: fail errno 110 (Connection timed out)",
        ),
    ];
    for (kind, line) in shapes {
        assert_eq!(
            parse(kind, line).cause,
            &[FirewallBlocked],
            "{kind}: {line}"
        );
    }
}
