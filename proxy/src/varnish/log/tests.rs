//! The FetchError classifier and the `-g request` reader on the captured
//! dumps (`proxy/fixtures/varnish/`), and on the documented texts of older
//! Varnish releases.

use super::*;
use crate::line::{CLOSED_OR_RESET, NO_SOCKET, REFUSED};

const REQUEST: &str = include_str!("../../../fixtures/varnish/varnishlog-request.txt");
const RAW: &str = include_str!("../../../fixtures/varnish/varnishlog-raw.txt");

#[test]
fn every_captured_fetch_failure_has_its_cause() {
    let expected: &[(&str, &str, &[Cause], u16)] = &[
        ("/sick", "app_sick", &[NoLiveUpstreams], 503),
        ("/refused", "refused", REFUSED, 503),
        ("/hang", "hang", &[Timeout], 503),
        ("/premature", "premature", CLOSED_OR_RESET, 503),
        ("/reset", "reset", CLOSED_OR_RESET, 503),
        ("/junk", "junk", NOT_HTTP_OR_BAD_HEADER, 503),
        ("/big", "big", &[HeaderTooBig], 503),
        ("/short", "short", &[InvalidBody], 200),
        ("/huge", "huge", &[], 200),
        ("/write", "write_err", &[ConnectionReset], 503),
    ];
    let failures = fetch_failures(REQUEST);
    assert_eq!(failures.len(), expected.len(), "{failures:#?}");
    for (f, (url, backend, cause, status)) in failures.iter().zip(expected) {
        let l = f.line();
        assert_eq!(
            (f.url.as_str(), f.backend.as_str(), l.cause, l.status),
            (*url, *backend, *cause, *status),
            "{f:?}"
        );
        assert_eq!(f.host, "shop.example");
        assert_eq!(l.server.as_deref(), Some("shop.example"));
        assert!(f.at_ms > 1_796_153_900_000, "{f:?}");
        assert!(f.vxid > 0);
    }
    // A backend that accepted the connection is named with its address.
    let hang = &failures[2];
    assert!(hang.peer.starts_with("127.0.0.1:"), "{hang:?}");
    assert_eq!(hang.at_ms, 1_796_153_961_079);
    assert!(failures[1].peer.is_empty(), "refused never connected");
}

#[test]
fn raw_records_and_bare_texts_parse_the_same() {
    let raw: Vec<ErrorLine> = RAW.lines().filter_map(parse_line).collect();
    let grouped: Vec<ErrorLine> = REQUEST.lines().filter_map(parse_line).collect();
    assert_eq!(raw.len(), 11);
    assert_eq!(
        raw.iter().map(|l| l.cause).collect::<Vec<_>>(),
        grouped.iter().map(|l| l.cause).collect::<Vec<_>>()
    );
    let refused = grouped.iter().find(|l| l.errno == Some(111)).unwrap();
    assert_eq!(refused.upstream.as_deref(), Some("refused"));
    assert_eq!(
        refused.message,
        "backend refused: fail errno 111 (Connection refused)"
    );
    assert_eq!(
        parse_line("FetchError first byte timeout").map(|l| l.cause),
        Some(&[Timeout][..])
    );
    // Other tags, other proxies' lines and junk are not FetchError records.
    for other in [
        "--  BereqURL       /refused",
        "         0 Backend_health - app_sick Still sick -------- 0 3 5 0.000000 0.000000 \"Open error 111 (Connection refused)\"",
        "2026/11/25 19:50:15 [error] 7#7: *1 connect() failed (111: Connection refused)",
        "",
        "--",
        "12 FetchErrorX y",
    ] {
        assert!(parse_line(other).is_none(), "{other}");
    }
}

#[test]
fn documented_texts_of_other_releases() {
    let rows: &[(&str, &[Cause], u16)] = &[
        ("no backend connection", NO_CONNECTION, 503),
        ("http first read error: EOF", CLOSED_OR_RESET, 503),
        ("http read error: EOF", CLOSED_OR_RESET, 503),
        (
            "backend write error: 32 (Broken pipe)",
            CLOSED_OR_RESET,
            503,
        ),
        (
            "http first read error: -1 104 (Connection reset by peer)",
            &[ConnectionReset],
            503,
        ),
        ("Received junk", NOT_HTTP_OR_BAD_HEADER, 503),
        ("Received too many headers", &[HeaderTooBig], 503),
        (
            "backend default: fail errno 110 (Connection timed out)",
            &[FirewallBlocked],
            503,
        ),
        (
            "backend default: fail errno 113 (No route to host)",
            &[FirewallBlocked],
            503,
        ),
        (
            "backend sock: fail errno 2 (No such file or directory)",
            NO_SOCKET,
            503,
        ),
        (
            "backend sock: fail errno 13 (Permission denied)",
            &[SocketPermissionDenied],
            503,
        ),
        ("backend default: busy", &[Saturated], 503),
        // Hold-down after a connect error (captured by agent/src/varnish/tests.rs).
        ("backend app: fail errno 0 (Success)", NO_CONNECTION, 503),
        ("between bytes timeout", &[Timeout], 503),
        ("chunked header non-hex", &[InvalidBody], 0),
        ("Could not get storage", &[], 0),
        (
            "req.body read error: 104 (Connection reset by peer)",
            &[],
            0,
        ),
        ("something new", &[], 0),
    ];
    for (text, cause, status) in rows {
        let l = parse_line(&format!("FetchError {text}")).unwrap();
        assert_eq!((l.cause, l.status), (*cause, *status), "{text}");
    }
    assert_eq!(backend_named("backend default: busy"), Some("default"));
    assert_eq!(backend_named("first byte timeout"), None);
}

#[test]
fn partial_and_hostile_dumps() {
    let dump = "**  << BeReq    >> 7\n--  FetchError     first byte timeout\n";
    let f = fetch_failures(dump);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].vxid, f[0].status, f[0].at_ms), (7, 0, 0));
    for junk in [
        "*",
        "** << BeReq >>",
        "--",
        "-- Timestamp Start: x.y",
        "--  BackendOpen 1",
        "\u{0}*",
    ] {
        let _ = fetch_failures(junk);
    }
    assert!(fetch_failures("*   << Request  >> 6\n-   RespStatus 200\n").is_empty());
}
