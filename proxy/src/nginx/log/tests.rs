//! The nginx error-line parser on every line of the real fixture
//! (proxy/fixtures/nginx/error.log, produced by capture.py with nginx 1.22).

use super::*;

const FIXTURE: &str = include_str!("../../../fixtures/nginx/error.log");

#[test]
fn every_fixture_line_has_its_taxonomy_cause() {
    let expected: &[(&[Cause], u16)] = &[
        (REFUSED, 502),
        (NO_SOCKET, 502),
        (&[SocketPermissionDenied], 502),
        (&[Saturated], 502),
        (&[ProtocolMismatch], 502),
        (&[PrematureClose], 502),
        (&[HeaderTooBig], 502),
        (&[ConnectionReset], 502),
        (&[Timeout], 504),
        (NOT_HTTP, 502),
        (&[TlsMismatch], 502),
        (&[InvalidHeader], 502),
        (&[InvalidBody], 502),
        (&[InvalidBody], 502),
        (REFUSED, 502),
        (&[], 0),
        (REFUSED, 502),
        (&[], 0),
        (&[NoLiveUpstreams], 502),
        (&[NoLiveUpstreams], 502),
        (&[DnsFailure], 502),
        (&[DnsFailure], 502),
        (&[DnsFailure], 502),
        (&[DnsFailure], 502),
        (&[ProxyConfigInvalid], 0),
    ];
    let lines: Vec<&str> = FIXTURE.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (line, (cause, status)) in lines.iter().zip(expected) {
        let parsed = parse_error_line(line).unwrap_or_else(|| panic!("unparsed: {line}"));
        assert_eq!(parsed.cause, *cause, "{line}");
        assert_eq!(parsed.status, *status, "{line}");
    }
}

#[test]
fn fields_of_a_unix_socket_crit_line() {
    let line = FIXTURE.lines().nth(2).unwrap();
    let l = parse_error_line(line).unwrap();
    assert_eq!(l.level, "crit");
    assert_eq!(l.pid, Some(778));
    assert_eq!(l.connection, Some(7));
    assert_eq!(l.errno, Some(13));
    assert_eq!(l.action.as_deref(), Some("connecting to upstream"));
    assert_eq!(l.client.as_deref(), Some("127.0.0.1"));
    assert_eq!(l.server.as_deref(), Some("site.test"));
    assert_eq!(l.request.as_deref(), Some("GET /denied HTTP/1.1"));
    assert_eq!(
        l.upstream.as_deref(),
        Some("fastcgi://unix:/tmp/gw502-capture/denied.sock:")
    );
    assert_eq!(l.host.as_deref(), Some("site.test"));
    assert_eq!(l.at_ms, Some(1_795_636_215_000));
    assert!(l.message.starts_with("connect() to unix:"));
    assert!(l.message.ends_with("while connecting to upstream"));
}

#[test]
fn resolver_and_emerg_lines_without_client() {
    let lines: Vec<&str> = FIXTURE.lines().collect();
    let r = parse_error_line(lines[21]).unwrap();
    assert_eq!(r.connection, None);
    assert_eq!(r.action.as_deref(), Some("resolving"));
    let e = parse_error_line(lines[24]).unwrap();
    assert_eq!(e.level, "emerg");
    assert!(e.message.starts_with("host not found in upstream"));
}

#[test]
fn taxonomy_rows_not_reproducible_here() {
    // Shapes from TAXONOMY §3 that need a firewall or TLS certificates.
    let base = "2026/11/25 19:50:15 [error] 7#7: *1 ";
    let tail = ", client: 127.0.0.1, server: s, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.9:80/\", host: \"s\"";
    for (msg, cause, status) in [
        (
            "upstream timed out (110: Connection timed out) while connecting to upstream",
            FirewallBlocked,
            504,
        ),
        (
            "connect() failed (113: No route to host) while connecting to upstream",
            FirewallBlocked,
            502,
        ),
        (
            "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream",
            TlsCertificateError,
            502,
        ),
        (
            "upstream sent duplicate header line: \"A: b\" while reading response header from upstream",
            InvalidHeader,
            502,
        ),
        (
            "upstream prematurely closed FastCGI stdout while reading response header from upstream",
            PrematureClose,
            502,
        ),
    ] {
        let l = parse_error_line(&format!("{base}{msg}{tail}")).unwrap();
        assert_eq!((l.cause, l.status), (&[cause][..], status), "{msg}");
    }
}

#[test]
fn hostile_input_never_panics() {
    for line in [
        "",
        "2026/11/25",
        "2026/11/25 19:50:15 [",
        "2026/11/25 19:50:15 [error] ",
        "2026/11/25 19:50:15 [error] 1#1: *",
        "2026/11/25 19:50:15 [error] 1#1: *9 x, client: ",
        "2026/11/25 19:50:15 [error] 1#1: *9 x, client: a, request: \"",
        "9999/99/99 99:99:99 [error] x",
        "2026/11/25 19:50:15 [ERROR] x",
        "2026/11/25 19:50:15 [error] \u{1b}[31m\u{0}é(",
    ] {
        let _ = parse_error_line(line);
    }
    let long = format!(
        "2026/11/25 19:50:15 [error] 1#1: *1 {}é",
        "é".repeat(20_000)
    );
    assert!(parse_error_line(&long).unwrap().message.len() <= MAX_LINE);
    assert!(parse_error_line("2026/11/25 19:50:15 [ERROR] x").is_none());
}
