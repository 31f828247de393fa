//! Access-line parsing on real nginx access logs (proxy/fixtures/nginx/
//! access.log with an `upstreaminfo` format, access-combined.log in nginx's
//! default `combined`), made by capture.py.

use super::*;

const UPSTREAMINFO: &str = include_str!("../../fixtures/nginx/access.log");
const COMBINED_LOG: &str = include_str!("../../fixtures/nginx/access-combined.log");
const TEMPLATE: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" host=$host upstream_status=\"$upstream_status\"";

#[test]
fn upstreaminfo_lines_give_status_upstream_status_and_host() {
    let f = AccessFormat::nginx(TEMPLATE);
    let lines: Vec<AccessLine> = UPSTREAMINFO
        .lines()
        .map(|l| parse_line(l, &f).unwrap())
        .collect();
    assert_eq!(lines.len(), UPSTREAMINFO.lines().count());
    assert_eq!(lines[0].status, 200);
    assert_eq!(lines[0].upstream_status.as_deref(), Some("200"));
    assert_eq!(lines[0].host.as_deref(), Some("site.test"));
    assert_eq!(lines[0].at_ms, Some(1_795_636_215_000));
    assert!(
        lines
            .iter()
            .any(|l| l.status == 504 && l.upstream_status.as_deref() == Some("504"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.status == 503 && l.upstream_status.as_deref() == Some("503"))
    );
    assert!(lines.iter().any(|l| l.status == 502));
}

#[test]
fn combined_lines_parse_without_host() {
    let l = parse_line(
        COMBINED_LOG.lines().next().unwrap(),
        &AccessFormat::combined(),
    )
    .unwrap();
    assert_eq!((l.status, l.host, l.upstream_status), (200, None, None));
    // The richer format does not match a combined line.
    assert!(
        parse_line(
            COMBINED_LOG.lines().next().unwrap(),
            &AccessFormat::nginx(TEMPLATE)
        )
        .is_none()
    );
}

#[test]
fn apache_vhost_combined() {
    // Shape of Apache's vhost_combined (apache2 is not installed here).
    let line = "shop.test:80 10.0.0.1 - - [25/Nov/2026:19:50:15 +0100] \"GET / HTTP/1.1\" 502 341 \"-\" \"curl/7.88.1\"";
    let l = parse_line(line, &AccessFormat::vhost_combined()).unwrap();
    assert_eq!((l.status, l.host.as_deref()), (502, Some("shop.test")));
    assert_eq!(l.at_ms, Some(1_795_636_215_000 - 3_600_000));
}

#[test]
fn junk_never_panics() {
    let f = AccessFormat::nginx(TEMPLATE);
    for line in [
        "",
        "-",
        "\u{0}\u{1b}",
        "1.2.3.4 - - [",
        &"x".repeat(100_000),
    ] {
        assert!(parse_line(line, &f).is_none());
    }
    let _ = AccessFormat::nginx("$");
    let _ = AccessFormat::nginx("${");
    let _ = AccessFormat::apache("%");
    let _ = AccessFormat::apache("%{");
}
