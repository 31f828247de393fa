//! The fingerprint rules run on CDN responses other people recorded from the
//! real edges (`probe/fixtures/recorded/`, provenance in its README): every
//! recorded file with the verdict it must give, and the same recorded edge
//! headers over a body the origin forwarded.
//!
//! The recordings are what a tool printed, not wire bytes: `curl -i` and
//! `curl -I` print the head as received, `curl -v` prefixes it with `< `, an
//! issue quoting a log prefixes it with `> `, and some sources kept only the
//! body. [`printed`] reads those back without touching the bytes themselves.
//! Envoy's `proxy-status` pages, captured here from the real Envoy, are
//! checked at the end.

use super::fingerprint::{Fingerprint, fingerprint};
use super::head::{header, parse_response_head};

/// A response as a tool printed it: status, headers and body.
struct Printed {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Reads a printed response: an optional `< ` / `> ` prefix per line (curl
/// `-v`, a quoted log), the status line (`HTTP/1.1` or `HTTP/2`), header
/// lines up to the first empty line, then the body as printed.
fn printed(text: &str) -> Printed {
    let mut lines = text.split('\n').map(|line| match line {
        "<" | ">" => "",
        _ => line
            .strip_prefix("< ")
            .or_else(|| line.strip_prefix("> "))
            .unwrap_or(line),
    });
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let body = lines.collect::<Vec<_>>().join("\n");
    Printed {
        status,
        headers,
        body,
    }
}

fn verdict(fp: &Fingerprint) -> (&'static str, &'static str, &str) {
    (fp.maker, fp.edge, fp.edge_error.as_str())
}

const CF_520: &str = include_str!("../fixtures/recorded/cloudflare-520-head.txt");
const CF_522: &str = include_str!("../fixtures/recorded/cloudflare-522-head.txt");
const AKAMAI_403: &str = include_str!("../fixtures/recorded/akamai-403-access-denied.txt");
const BUNNY_504: &str = include_str!("../fixtures/recorded/bunny-504-head.txt");
const POSTGREST_401: &str = include_str!("../fixtures/recorded/postgrest-401-proxy-status.txt");
const FASTLY_503_BODY: &str =
    include_str!("../fixtures/recorded/fastly-503-first-byte-timeout.html");
const CLOUDFRONT_502_TEXT: &str = include_str!("../fixtures/recorded/cloudfront-502-rendered.txt");
const CLOUDFRONT_503_LAMBDA: &str =
    include_str!("../fixtures/recorded/cloudfront-503-lambda-invalid.html");
const CLOUDFRONT_504_TEXT: &str = include_str!("../fixtures/recorded/cloudfront-504-rendered.txt");
const CF_1016_TEXT: &str = include_str!("../fixtures/recorded/cloudflare-1016-rendered.txt");
const CF_502_TEXT: &str = include_str!("../fixtures/recorded/cloudflare-502-branded-rendered.txt");

/// A recorded head (and body, where one was recorded) and its verdict.
type Row = (&'static str, (&'static str, &'static str, &'static str));

#[test]
fn every_recorded_response_gives_its_verdict() {
    let rows: [Row; 5] = [
        // `curl -I`: a HEAD, so no body; the status and `CF-RAY` say it all.
        (CF_520, ("cloudflare_unbranded", "cloudflare", "520")),
        (CF_522, ("cloudflare_unbranded", "cloudflare", "522")),
        // Akamai's own page, but a 403 is no 5xx: the edge is named, no maker.
        (AKAMAI_403, ("", "akamai", "")),
        // Bunny's own 504 (a cache miss the origin did not answer in time):
        // no body, but Bunny's `ErrorCode` header.
        (BUNNY_504, ("bunny", "bunny", "106")),
        // PostgREST sends `proxy-status` on its own 4xx: no edge, no maker.
        (POSTGREST_401, ("", "", "")),
    ];
    for (text, want) in rows {
        let p = printed(text);
        let fp = fingerprint(p.status, &p.headers, p.body.as_bytes());
        assert_eq!(verdict(&fp), want, "{text}");
    }
}

#[test]
fn the_printed_recordings_are_read_back_whole() {
    let cf = printed(CF_520);
    assert_eq!(cf.status, 520);
    assert_eq!(cf.headers.len(), 11);
    assert_eq!(header(&cf.headers, "cf-ray"), Some("4ee02a558935bdc3-AMS"));
    assert_eq!(cf.body, "");
    let masked = printed(CF_522);
    assert_eq!(masked.status, 522);
    assert_eq!(header(&masked.headers, "server"), Some("cloudflare"));
    assert_eq!(masked.headers.len(), 11);
    let akamai = printed(AKAMAI_403);
    assert_eq!(akamai.status, 403);
    assert!(akamai.body.starts_with("<HTML><HEAD>"));
    assert!(akamai.body.contains("Reference&#32;&#35;18&#46;e834768"));
    // The README copy lost one byte of the 262 (see the fixture README).
    assert_eq!(header(&akamai.headers, "content-length"), Some("262"));
    assert_eq!(akamai.body.len(), 261);
    let pg = printed(POSTGREST_401);
    assert_eq!(pg.status, 401);
    // The body as sent is 92 bytes; zsh appended `%` for the missing newline.
    let json = pg.body.split("}%").next().expect("a body").len() + 1;
    assert_eq!(
        header(&pg.headers, "content-length"),
        Some(json.to_string().as_str())
    );
}

#[test]
fn akamai_recorded_page_heading_is_read() {
    let p = printed(AKAMAI_403);
    let lower = p.body.to_ascii_lowercase();
    assert!(lower.contains("reference&#32;&#35;"));
    // The same page as a 5xx is Akamai's, with its heading as the error.
    let fp = fingerprint(503, &p.headers, p.body.as_bytes());
    assert_eq!(verdict(&fp), ("akamai", "akamai", "Access Denied"));
}

/// A body recorded without its head, the status it came with, and its verdict.
type BodyRow = (
    &'static str,
    u16,
    (&'static str, &'static str, &'static str),
);

/// Bodies recorded without their head: the page alone names the edge.
#[test]
fn recorded_bodies_name_their_edge_without_headers() {
    let rows: [BodyRow; 6] = [
        (
            FASTLY_503_BODY,
            503,
            ("fastly", "fastly", "first byte timeout"),
        ),
        (
            CLOUDFRONT_502_TEXT,
            502,
            ("cloudfront", "cloudfront", "OriginConnectError"),
        ),
        // "attempted to establish a connection ... or the origin closed the
        // connection": the page does not tell a timeout from a close.
        (
            CLOUDFRONT_504_TEXT,
            504,
            ("cloudfront", "cloudfront", "OriginReadError"),
        ),
        // The edge's own function failed: no origin result type.
        (CLOUDFRONT_503_LAMBDA, 503, ("cloudfront", "cloudfront", "")),
        // 1016 is Cloudflare's 530 (the issue did not record the status).
        (
            CF_1016_TEXT,
            530,
            ("cloudflare_branded", "cloudflare", "1016"),
        ),
        // The branded page over an origin's 502: Cloudflare's page, no code.
        (CF_502_TEXT, 502, ("cloudflare_branded", "cloudflare", "")),
    ];
    for (body, status, want) in rows {
        let fp = fingerprint(status, &[], body.as_bytes());
        assert_eq!(verdict(&fp), want, "{body}");
    }
    // An app's page that mentions a ray id is not Cloudflare's.
    let quoted = fingerprint(500, &[], b"support asked for the Ray ID: abc, see docs");
    assert_eq!(verdict(&quoted), ("app", "", ""));
    // A self-hosted Varnish page spells it `Meditation` and names no
    // `cache-` node: not Fastly's (captured here, `pages/`).
    let varnish = include_bytes!("../fixtures/pages/varnish-503-origin.http");
    let head = parse_response_head(varnish).expect("a head");
    let fp = fingerprint(503, &[], &varnish[head.head_len..]);
    assert_eq!((fp.maker, fp.edge), ("varnish", ""));
}

/// The recorded edge heads over a body the origin sent: the captured nginx
/// 502 page stays nginx's, with the edge named and no edge error.
#[test]
fn recorded_edge_heads_over_a_forwarded_body_are_the_origins() {
    let nginx = include_bytes!("../fixtures/pages/nginx-502.http");
    let body = &nginx[parse_response_head(nginx).expect("a head").head_len..];
    for (text, edge) in [
        (CF_520, "cloudflare"),
        (CF_522, "cloudflare"),
        (AKAMAI_403, "akamai"),
    ] {
        let p = printed(text);
        let fp = fingerprint(502, &p.headers, body);
        assert_eq!(verdict(&fp), ("nginx", edge, ""), "{text}");
    }
    // The recorded Bunny head without Bunny's `ErrorCode` (as a forwarded
    // origin 504 would come) and with the origin's nginx page: nginx's.
    let mut bunny = printed(BUNNY_504);
    bunny.headers.retain(|(n, _)| n != "ErrorCode");
    let fp = fingerprint(504, &bunny.headers, b"");
    assert_eq!(verdict(&fp), ("app", "bunny", ""));
    let fp = fingerprint(502, &bunny.headers, body);
    assert_eq!(verdict(&fp), ("nginx", "bunny", ""));
    // The app's JSON error through the recorded Cloudflare head is the app's.
    let p = printed(CF_520);
    let fp = fingerprint(502, &p.headers, br#"{"error":"db down"}"#);
    assert_eq!(verdict(&fp), ("app", "cloudflare", ""));
}

/// Envoy 1.40 with `proxy_status_config` (captured here, `pages/`): its own
/// error pages stay Envoy's, and `proxy-status` names the RFC 9209 type with
/// the response flag in `details`.
#[test]
fn envoy_captured_pages_carry_proxy_status() {
    let rows: [(&[u8], u16, &str, &str); 3] = [
        (
            include_bytes!("../fixtures/pages/envoy-503-proxy-status-refused.http"),
            503,
            "connection_refused",
            "UF",
        ),
        (
            include_bytes!("../fixtures/pages/envoy-504-proxy-status-hang.http"),
            504,
            "http_response_timeout",
            "UT",
        ),
        (
            include_bytes!("../fixtures/pages/envoy-502-proxy-status-garbage.http"),
            502,
            "http_protocol_error",
            "UPE",
        ),
    ];
    for (raw, status, error, flag) in rows {
        let head = parse_response_head(raw).expect("a head");
        assert_eq!(head.status, status);
        let fp = fingerprint(head.status, &head.headers, &raw[head.head_len..]);
        assert_eq!((fp.maker, fp.edge), ("envoy", ""));
        let value = head.header("proxy-status").expect("a proxy-status");
        let members = crate::proxy_status::parse(value).expect("a valid value");
        let first = crate::proxy_status::first_error(&members).expect("an error");
        assert_eq!(first.proxy, "envoy");
        let word = first
            .error
            .clone()
            .and_then(Result::ok)
            .map(|e| e.to_string());
        assert_eq!(word.as_deref(), Some(error));
        assert!(first.details.as_deref().is_some_and(|d| d.ends_with(flag)));
    }
}
