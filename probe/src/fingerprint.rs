//! Who made a response: the proxy or CDN whose default error page it is, and
//! the edge in front of the site, from the status, headers and a body prefix.
//!
//! The words are those of `EdgeObservation.fingerprint` and `.edge` in
//! edge.proto. Proxy pages are recognised by the proxy model of each proxy
//! (`gw502-proxy`, `Proxy::page`), on bodies captured from the real software
//! (see `probe/fixtures/pages/README.md`); CDN markers
//! come from the vendors' published headers and pages, as TAXONOMY.md lists,
//! and are tested on responses other people recorded from the real CDNs
//! (`probe/fixtures/recorded/`, tests in `fingerprint_recorded.rs`).
//! A 5xx that is no proxy's or edge's page is `app`: the application sent it.

use gw502_proxy::{Page, PageMark};

use super::head::header;

/// The maker, the edge and the vendor's error code of one response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// nginx, haproxy, apache, caddy, cloudflare_branded,
    /// cloudflare_unbranded, cloudfront, aws_alb, gcp, azure_front_door,
    /// vercel, fastly, akamai, bunny, app, or "".
    pub maker: &'static str,
    /// cloudflare, cloudfront, aws_alb, gcp, azure_front_door, vercel,
    /// fastly, akamai, bunny, or "".
    pub edge: &'static str,
    /// Vendor error code (Cloudflare `1016` or `521`, CloudFront result type,
    /// GCP status detail, Vercel error, Fastly's reason such as `first byte
    /// timeout`, Akamai's heading such as `Zero size object`, Bunny's
    /// `ErrorCode` header such as `106`), or "".
    pub edge_error: String,
}

fn has(headers: &[(String, String)], name: &str) -> bool {
    header(headers, name).is_some()
}

fn value_lc(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The edge in front, from headers alone.
fn edge_of(headers: &[(String, String)]) -> &'static str {
    let server = value_lc(headers, "server");
    let via = value_lc(headers, "via");
    if has(headers, "cf-ray") || server == "cloudflare" {
        "cloudflare"
    } else if has(headers, "x-amz-cf-id")
        || via.contains("(cloudfront)")
        || value_lc(headers, "x-cache").contains("cloudfront")
    {
        "cloudfront"
    } else if server.starts_with("awselb") {
        "aws_alb"
    } else if has(headers, "x-azure-ref") {
        "azure_front_door"
    } else if has(headers, "x-vercel-id") || has(headers, "x-vercel-error") || server == "vercel" {
        "vercel"
    } else if via.split(',').any(|hop| hop.trim() == "1.1 google") {
        "gcp"
    } else if value_lc(headers, "x-served-by").starts_with("cache-")
        || headers
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with("fastly-"))
        || has(headers, "x-fastly-request-id")
    {
        // `via: 1.1 varnish` alone is any Varnish, the origin's own included.
        "fastly"
    } else if server.starts_with("akamaighost") || has(headers, "akamai-grn") {
        "akamai"
    } else if server.starts_with("bunnycdn") || has(headers, "cdn-requestid") {
        "bunny"
    } else {
        ""
    }
}

/// CloudFront result types by the sentence its error page uses.
const CLOUDFRONT_PHRASES: [(&str, &str); 4] = [
    (
        "wasn't able to resolve the origin domain name",
        "OriginDnsError",
    ),
    ("wasn't able to connect to the origin", "OriginConnectError"),
    ("origin closed the connection", "OriginReadError"),
    ("couldn't connect to the origin", "OriginConnectError"),
];

/// GCP load balancer status details that may appear in a body or header.
const GCP_DETAILS: [&str; 5] = [
    "failed_to_connect_to_backend",
    "backend_connection_closed_before_data_sent_to_client",
    "backend_timeout",
    "backend_response_headers_too_long",
    "response_sent_by_backend",
];

/// Fastly's own error page: Varnish's synthetic page under Fastly's name
/// (`Error 503 first byte timeout`, `Guru Mediation`) or `Fastly error`.
/// Returns its reason (`first byte timeout`, `backend fetch failed`).
fn fastly_page(status: u16, lower: &str) -> Option<String> {
    if !["guru mediation", "guru meditation", "fastly error"]
        .iter()
        .any(|m| lower.contains(m))
    {
        return None;
    }
    let marker = format!("error {status} ");
    let at = lower.find(&marker)?;
    let reason: String = lower[at + marker.len()..]
        .chars()
        .take_while(|c| *c != '<' && *c != '\n')
        .collect();
    Some(reason.trim().to_string())
}

/// Fastly's own page without its headers: Fastly's spelling `Guru
/// Mediation` (Varnish's own is `Meditation`) with the cache node that made
/// it (`Details: cache-lax1431-LAX ...`), as a client that kept only the body
/// recorded it (see `probe/fixtures/recorded/README.md`).
fn fastly_body(lower: &str) -> bool {
    lower.contains("guru mediation") && lower.contains("details: cache-")
}

/// The edge whose own page `maker` is, for a response seen without the
/// edge's headers.
fn edge_of_maker(maker: &str) -> &'static str {
    match maker {
        "cloudflare_branded" | "cloudflare_unbranded" => "cloudflare",
        "cloudfront" => "cloudfront",
        "fastly" => "fastly",
        _ => "",
    }
}

/// Akamai's own error page: a bare HTML document with `Reference #` (HTML
/// escaped as `Reference&#32;&#35;`). Returns its heading (`Gateway
/// Timeout`, `Service Unavailable - Zero size object`).
fn akamai_page(text: &str, lower: &str) -> Option<String> {
    if !(lower.contains("reference&#32;&#35;") || lower.contains("reference #")) {
        return None;
    }
    let at = lower.find("<h1>")? + "<h1>".len();
    let end = lower[at..].find("</h1>")? + at;
    Some(text[at..end].trim().to_string())
}

/// Cloudflare's error code: `1016`-style from the body, else the 52x/530 status.
fn cloudflare_code(status: u16, text: &str) -> String {
    for marker in ["error code: ", "Error ", "error code "] {
        let mut rest = text;
        while let Some(at) = rest.find(marker) {
            let digits: String = rest[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.len() == 4 && digits.starts_with('1') {
                return digits;
            }
            rest = &rest[at + marker.len()..];
        }
    }
    if (520..=530).contains(&status) {
        status.to_string()
    } else {
        String::new()
    }
}

/// Cloudflare's branded page as text (what a browser shows of it, as people
/// recorded it): the newer 5xx page's `Cloudflare Location:`, or a `Ray ID:`
/// next to a `1xxx` Cloudflare error (`Error 1016 Ray ID: ...`).
fn cloudflare_text(status: u16, text: &str, lower: &str) -> bool {
    lower.contains("cloudflare location:")
        || (lower.contains("ray id: ") && cloudflare_code(status, text).starts_with('1'))
}

/// Says who made a response and which edge is in front.
pub fn fingerprint(status: u16, headers: &[(String, String)], body: &[u8]) -> Fingerprint {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let edge = edge_of(headers);
    let server = value_lc(headers, "server");
    let mut edge_error = String::new();
    // Whose own error page it is, by the proxy model of each proxy.
    let page = Page {
        status,
        server: &server,
        body: &lower,
        empty: body.is_empty(),
    };
    let proxy_page = |mark: PageMark| {
        gw502_proxy::all()
            .find(|p| p.page(&page) == Some(mark))
            .map(|p| p.kind().as_str())
    };

    let maker: &'static str = if lower.contains("<hr><center>cloudflare</center>") {
        "cloudflare_unbranded"
    } else if lower.contains("cf-error-details")
        || lower.contains("cloudflare ray id")
        || lower.contains("cf-wrapper")
        || cloudflare_text(status, &text, &lower)
    {
        "cloudflare_branded"
    } else if lower.contains("generated by cloudfront") {
        "cloudfront"
    } else if status >= 500 && fastly_body(&lower) && fastly_page(status, &lower).is_some() {
        "fastly"
    } else if let Some(kind) = proxy_page(PageMark::Body) {
        kind
    } else if edge == "cloudflare"
        && (has(headers, "cf-error-type") || (520..=530).contains(&status))
    {
        "cloudflare_unbranded"
    } else if edge == "cloudfront"
        && value_lc(headers, "x-cache").contains("error from cloudfront")
        && status >= 500
    {
        "cloudfront"
    } else if server.starts_with("awselb") && status >= 500 {
        "aws_alb"
    } else if has(headers, "x-vercel-error") {
        "vercel"
    } else if edge == "azure_front_door" && status >= 500 && lower.contains("azure front door") {
        "azure_front_door"
    } else if edge == "gcp" && status >= 500 && GCP_DETAILS.iter().any(|d| lower.contains(d)) {
        "gcp"
    } else if edge == "fastly" && status >= 500 && fastly_page(status, &lower).is_some() {
        "fastly"
    } else if edge == "akamai" && status >= 500 && akamai_page(&text, &lower).is_some() {
        "akamai"
    } else if edge == "bunny"
        && status >= 500
        && (lower.contains("bunnycdn") || lower.contains("bunny.net") || has(headers, "errorcode"))
    {
        "bunny"
    } else if let Some(kind) = proxy_page(PageMark::Header) {
        kind
    } else if status >= 500 {
        "app"
    } else {
        ""
    };
    // An edge's own page names the edge even when its headers are missing.
    let edge = if edge.is_empty() {
        edge_of_maker(maker)
    } else {
        edge
    };

    match edge {
        "cloudflare" if maker.starts_with("cloudflare") || has(headers, "cf-error-type") => {
            edge_error = cloudflare_code(status, &text);
            if edge_error.is_empty() {
                edge_error = header(headers, "cf-error-type")
                    .unwrap_or_default()
                    .to_string();
            }
        }
        "cloudfront" if maker == "cloudfront" => {
            edge_error = CLOUDFRONT_PHRASES
                .iter()
                .find(|(phrase, _)| lower.contains(phrase))
                .map(|(_, kind)| (*kind).to_string())
                .unwrap_or_default();
        }
        "gcp" => {
            edge_error = GCP_DETAILS
                .iter()
                .find(|d| lower.contains(*d))
                .map(|d| (*d).to_string())
                .unwrap_or_default();
        }
        "fastly" if maker == "fastly" => {
            edge_error = fastly_page(status, &lower).unwrap_or_default();
        }
        "bunny" if maker == "bunny" => {
            edge_error = header(headers, "errorcode").unwrap_or_default().to_string();
        }
        "akamai" if maker == "akamai" => {
            edge_error = akamai_page(&text, &lower).unwrap_or_default();
        }
        "vercel" => {
            edge_error = header(headers, "x-vercel-error")
                .unwrap_or_default()
                .to_string()
        }
        _ => {}
    }
    Fingerprint {
        maker,
        edge,
        edge_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::parse_response_head;

    fn captured(raw: &[u8]) -> Fingerprint {
        let head = parse_response_head(raw).unwrap();
        fingerprint(head.status, &head.headers, &raw[head.head_len..])
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn captured_proxy_pages() {
        let rows: [(&[u8], &str); 15] = [
            (include_bytes!("../fixtures/pages/nginx-502.http"), "nginx"),
            (include_bytes!("../fixtures/pages/nginx-504.http"), "nginx"),
            (
                include_bytes!("../fixtures/pages/nginx-502-tokens-off.http"),
                "nginx",
            ),
            (
                include_bytes!("../fixtures/pages/nginx-400-plain-http-to-https.http"),
                "nginx",
            ),
            (
                include_bytes!("../fixtures/pages/haproxy-502.http"),
                "haproxy",
            ),
            (
                include_bytes!("../fixtures/pages/haproxy-503.http"),
                "haproxy",
            ),
            (
                include_bytes!("../fixtures/pages/haproxy-504.http"),
                "haproxy",
            ),
            (
                include_bytes!("../fixtures/pages/apache-500-proxy-error-tls.http"),
                "apache",
            ),
            (
                include_bytes!("../fixtures/pages/apache-503-refused.http"),
                "apache",
            ),
            (
                include_bytes!("../fixtures/pages/traefik-502.http"),
                "traefik",
            ),
            (
                include_bytes!("../fixtures/pages/traefik-504.http"),
                "traefik",
            ),
            (
                include_bytes!("../fixtures/pages/traefik-503-no-server.http"),
                "traefik",
            ),
            (
                include_bytes!("../fixtures/pages/envoy-503-uf.http"),
                "envoy",
            ),
            (
                include_bytes!("../fixtures/pages/envoy-503-uh.http"),
                "envoy",
            ),
            (
                include_bytes!("../fixtures/pages/envoy-504-ut.http"),
                "envoy",
            ),
        ];
        for (raw, maker) in rows {
            let fp = captured(raw);
            assert_eq!(
                (fp.maker, fp.edge),
                (maker, ""),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn cloudflare_generated_and_relayed() {
        let own = fingerprint(
            521,
            &h(&[
                ("server", "cloudflare"),
                ("cf-ray", "8a1b-AMS"),
                ("cf-error-type", "5xx"),
            ]),
            b"error code: 521",
        );
        assert_eq!(
            (own.maker, own.edge, own.edge_error.as_str()),
            ("cloudflare_unbranded", "cloudflare", "521")
        );
        let dns = fingerprint(530, &h(&[("cf-ray", "x")]), b"<title>Origin DNS error | example.com | Cloudflare</title> Error 1016 <div id=\"cf-error-details\">");
        assert_eq!(
            (dns.maker, dns.edge_error.as_str()),
            ("cloudflare_branded", "1016")
        );
        let relayed = fingerprint(
            502,
            &h(&[("server", "cloudflare"), ("cf-ray", "x")]),
            include_bytes!("../fixtures/pages/nginx-502.http")
                .split_at(170)
                .1,
        );
        assert_eq!(
            (relayed.maker, relayed.edge, relayed.edge_error.as_str()),
            ("nginx", "cloudflare", "")
        );
    }

    #[test]
    fn other_edges() {
        let cf = fingerprint(
            502,
            &h(&[("x-cache", "Error from cloudfront"), ("via", "1.1 abc.cloudfront.net (CloudFront)"), ("x-amz-cf-id", "id")]),
            b"<H1>502 ERROR</H1> CloudFront wasn't able to connect to the origin. Generated by cloudfront (CloudFront)",
        );
        assert_eq!(
            (cf.maker, cf.edge, cf.edge_error.as_str()),
            ("cloudfront", "cloudfront", "OriginConnectError")
        );
        let alb = fingerprint(
            502,
            &h(&[("server", "awselb/2.0")]),
            b"<html><body><center><h1>502 Bad Gateway</h1></center></body></html>",
        );
        assert_eq!((alb.maker, alb.edge), ("aws_alb", "aws_alb"));
        let gcp = fingerprint(
            502,
            &h(&[("via", "1.1 google")]),
            b"failed_to_connect_to_backend",
        );
        assert_eq!(
            (gcp.maker, gcp.edge, gcp.edge_error.as_str()),
            ("gcp", "gcp", "failed_to_connect_to_backend")
        );
        let afd = fingerprint(503, &h(&[("x-azure-ref", "0abc")]), b"upstream says no");
        assert_eq!((afd.maker, afd.edge), ("app", "azure_front_door"));
        let vercel = fingerprint(
            502,
            &h(&[
                ("x-vercel-id", "fra1::x"),
                ("x-vercel-error", "ROUTER_EXTERNAL_TARGET_CONNECTION_ERROR"),
            ]),
            b"",
        );
        assert_eq!(
            (vercel.maker, vercel.edge, vercel.edge_error.as_str()),
            (
                "vercel",
                "vercel",
                "ROUTER_EXTERNAL_TARGET_CONNECTION_ERROR"
            )
        );
    }

    /// CDN response heads in the vendors' documented shapes (see the fixture
    /// README): the edge's own page against a body the origin forwarded.
    /// A fixture and its (maker, edge, edge_error).
    type PageRow = (&'static [u8], (&'static str, &'static str, &'static str));

    #[test]
    fn cdn_pages_and_forwarded_bodies() {
        let rows: [PageRow; 9] = [
            (
                include_bytes!("../fixtures/pages/cloudflare-522.http"),
                ("cloudflare_branded", "cloudflare", "522"),
            ),
            (
                include_bytes!("../fixtures/pages/cloudflare-530-1016.http"),
                ("cloudflare_branded", "cloudflare", "1016"),
            ),
            (
                include_bytes!("../fixtures/pages/cloudflare-521-plain.http"),
                ("cloudflare_unbranded", "cloudflare", "521"),
            ),
            (
                include_bytes!("../fixtures/pages/fastly-503-first-byte-timeout.http"),
                ("fastly", "fastly", "first byte timeout"),
            ),
            (
                include_bytes!("../fixtures/pages/fastly-503-forwarded.http"),
                ("app", "fastly", ""),
            ),
            (
                include_bytes!("../fixtures/pages/akamai-504.http"),
                ("akamai", "akamai", "Gateway Timeout"),
            ),
            (
                include_bytes!("../fixtures/pages/akamai-503-zero-size.http"),
                ("akamai", "akamai", "Service Unavailable - Zero size object"),
            ),
            (
                include_bytes!("../fixtures/pages/bunny-502.http"),
                ("bunny", "bunny", ""),
            ),
            (
                include_bytes!("../fixtures/pages/cloudfront-502.http"),
                ("cloudfront", "cloudfront", "OriginConnectError"),
            ),
        ];
        for (raw, want) in rows {
            let fp = captured(raw);
            assert_eq!(
                (fp.maker, fp.edge, fp.edge_error.as_str()),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // The origin's own Varnish page has no Fastly header: not Fastly's.
        let varnish = captured(include_bytes!("../fixtures/pages/varnish-503-origin.http"));
        assert_eq!((varnish.edge, varnish.edge_error.as_str()), ("", ""));
        assert_eq!(varnish.maker, "varnish");
        // The origin's nginx page relayed through Akamai and Bunny is nginx's.
        let nginx = include_bytes!("../fixtures/pages/nginx-502.http");
        let head = parse_response_head(nginx).unwrap();
        for edge in [("server", "AkamaiGHost"), ("cdn-requestid", "7f0c1e2d")] {
            let fp = fingerprint(502, &h(&[edge]), &nginx[head.head_len..]);
            assert_eq!((fp.maker, fp.edge_error.as_str()), ("nginx", ""));
        }
    }

    #[test]
    fn caddy_app_and_healthy() {
        assert_eq!(
            fingerprint(502, &h(&[("server", "Caddy")]), b"").maker,
            "caddy"
        );
        assert_eq!(
            fingerprint(502, &h(&[("server", "Caddy")]), b"{\"error\":\"db\"}").maker,
            "app"
        );
        assert_eq!(
            fingerprint(500, &h(&[("server", "gunicorn")]), b"Internal Server Error").maker,
            "app"
        );
        assert_eq!(
            fingerprint(200, &h(&[("server", "nginx")]), b"<html>hi</html>"),
            Fingerprint::default()
        );
        let apache = fingerprint(
            502,
            &[],
            b"<title>502 Proxy Error</title> The proxy server received an invalid response",
        );
        assert_eq!(apache.maker, "apache");
    }
}
