//! Rows for what an edge says about the origin from the response alone: an
//! RFC 9209 `proxy-status` error (each family of error types, and the
//! near-misses of a member without an error and an error type this collector
//! does not know), and Cloudflare's 52x codes mapped to the origin's layers,
//! with the origin agent's evidence still deciding. Header values follow the
//! shapes of RFC 9209 §2 and Cloudflare's documented headers, and the rows
//! marked "recorded" use values real software sent, as other people recorded
//! them (provenance in `probe/fixtures/recorded/README.md`).

use super::*;
use Cause::*;

const CF: &[(&str, &str)] = &[("server", "cloudflare"), ("cf-ray", "8f1e2d3c4b5a6978-FRA")];
const PREMATURE: &str =
    "upstream prematurely closed connection while reading response header from upstream";

/// Cloudflare's headers from a recorded `curl -I` of a real 520
/// (`probe/fixtures/recorded/cloudflare-520-head.txt`).
const CF_RECORDED: &[(&str, &str)] =
    &[("Server", "cloudflare"), ("CF-RAY", "4ee02a558935bdc3-AMS")];

/// A public answer carrying `proxy-status: value`, through no known edge.
fn status_says(status: u32, value: &str) -> Case {
    site("shop.example").edge("", status, "", "", &[("proxy-status", value)])
}

/// A Cloudflare-made error of `status`.
fn cloudflare(status: u32) -> Case {
    site("shop.example").edge("cloudflare", status, "cloudflare_unbranded", "", CF)
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "proxy-status: the origin's proxy says connection_refused, app.service failed",
            status_says(502, r#"origin-envoy; error=connection_refused; next-hop="127.0.0.1:3000""#)
                .host(web("web1").unit("app.service", "failed", "failed", "upstream").no_listeners("app.service")),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        row(
            "proxy-status: a CDN says connection_timeout, the origin's nginx listens",
            status_says(504, "ExampleCDN; error=connection_timeout").host(web("web1")),
            is(FirewallBlocked, 504, Hop::Edge),
        ),
        row(
            "proxy-status: a CDN says http_response_timeout",
            status_says(504, "ExampleCDN; error=http_response_timeout").host(web("web1")),
            is(Timeout, 504, Hop::Edge),
        ),
        row(
            "proxy-status: origin probe, the origin's balancer says tls_certificate_error",
            status_says(502, r#"origin-lb; error=tls_certificate_error; next-hop="127.0.0.1:3000"; details="certificate has expired""#)
                .obs({
                    let mut o = obs("https://shop.example/", "collector/c1", "origin/web1", NOW - 9_000, "ok", 502, "");
                    o.headers = vec![Header { name: "proxy-status".into(), value: r#"origin-lb; error=tls_certificate_error; next-hop="127.0.0.1:3000"; details="certificate has expired""#.into() }];
                    o
                })
                .host(web("web1")),
            is(TlsCertificateError, 502, Hop::Proxy),
        ),
        row(
            "proxy-status: a CDN says http_response_header_section_size",
            status_says(502, r#"ExampleCDN; error=http_response_header_section_size; details="response header section over 64 KiB""#)
                .host(web("web1")),
            is(HeaderTooBig, 502, Hop::Edge),
        ),
        row(
            "proxy-status: the origin's proxy says dns_error for its upstream, and the host's resolver fails it",
            status_says(502, r#"origin-lb; error=dns_error; next-hop="api.internal:8080"; details="NXDOMAIN""#)
                .host(nginx("web1", "http://api.internal:8080").dns("api.internal", &[], "NXDOMAIN")),
            is(DnsFailure, 502, Hop::Proxy),
        ),
        near(
            "proxy-status near-miss: a CDN member with no error relays the app's 502",
            EdgeGenerated,
            site("shop.example")
                .edge("", 502, "app", "", &[("proxy-status", "ExampleCDN; received-status=502")])
                .host(web("web1")),
            is(UpstreamReturnedError, 502, Hop::Upstream),
        ),
        near(
            "proxy-status near-miss: an error type this collector does not know names no cause",
            FirewallBlocked,
            status_says(502, "ExampleCDN; error=gremlins").host(web("web1")),
            is(InsufficientEvidence, 502, Hop::Edge),
        ),
        row(
            "proxy-status recorded from h2o: connection_refused with its unquoted next-hop, app.service failed",
            status_says(502, "h2o/test; error=connection_refused; next-hop=127.0.0.1")
                .host(web("web1").unit("app.service", "failed", "failed", "upstream").no_listeners("app.service")),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        row(
            "proxy-status captured from Envoy 1.40: connection_refused with its UF details, app.service failed",
            status_says(
                503,
                r#"envoy; error=connection_refused; details="upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}; UF""#,
            )
            .host(web("web1").unit("app.service", "failed", "failed", "upstream").no_listeners("app.service")),
            is(ServiceDown, 503, Hop::Proxy),
        ),
        row(
            "proxy-status captured from Envoy 1.40: http_response_timeout (UT)",
            status_says(504, r#"envoy; error=http_response_timeout; details="response_timeout; UT""#)
                .host(web("web1")),
            is(Timeout, 504, Hop::Proxy),
        ),
        row(
            "proxy-status recorded from Pingclair: connection_timeout, the origin's nginx listens",
            status_says(502, "pingclair; error=connection_timeout").host(web("web1")),
            is(FirewallBlocked, 502, Hop::Proxy),
        ),
        row(
            "proxy-status recorded from Pingclair: http_response_timeout",
            status_says(504, "pingclair; error=http_response_timeout").host(web("web1")),
            is(Timeout, 504, Hop::Proxy),
        ),
        near(
            "proxy-status recorded from PostgREST near-miss: its own 401 with error=42501 is no incident",
            EdgeGenerated,
            status_says(401, "PostgREST; error=42501").host(web("web1")),
            None,
        ),
        near(
            "proxy-status recorded from Pingclair near-miss: proxy_internal_error names nothing behind the proxy",
            ServiceDown,
            status_says(502, "pingclair; error=proxy_internal_error")
                .host(web("web1").unit("app.service", "failed", "failed", "upstream").no_listeners("app.service")),
            is(InsufficientEvidence, 502, Hop::Proxy),
        ),
        row(
            "cloudflare 520 recorded head: the origin's nginx logs the app closing early",
            site("shop.example")
                .edge("cloudflare", 520, "cloudflare_unbranded", "520", CF_RECORDED)
                .host(web("web1").ngx("premature_close", "error", PREMATURE, "http://127.0.0.1:3000/")),
            is(PrematureClose, 520, Hop::Edge),
        ),
        row(
            "cloudflare 521 with no origin probe: the origin's nginx is stopped",
            cloudflare(521).host(web("web1").unit("nginx.service", "inactive", "dead", "proxy")),
            is(ProxyDown, 521, Hop::Edge),
        ),
        row(
            "cloudflare 522 with no origin probe: nginx listens, the path drops the edge",
            cloudflare(522).host(web("web1")),
            is(FirewallBlocked, 522, Hop::Edge),
        ),
        row(
            "cloudflare 523 with no origin probe: the origin is unreachable",
            cloudflare(523).host(web("web1")),
            is(FirewallBlocked, 523, Hop::Edge),
        ),
        near(
            "cloudflare 522 near-miss: the app is down and nginx logs refusals",
            FirewallBlocked,
            cloudflare(522).host(
                web("web1")
                    .unit("app.service", "failed", "failed", "upstream")
                    .no_listeners("app.service")
                    .ngx(
                        "service_down|wrong_port|not_listening",
                        "error",
                        "connect() failed (111: Connection refused) while connecting to upstream",
                        "http://127.0.0.1:3000/",
                    ),
            ),
            is(ServiceDown, 522, Hop::Edge),
        ),
        row(
            "cloudflare 524 with no origin probe: the app does not answer in time",
            cloudflare(524).host(web("web1")),
            is(Timeout, 524, Hop::Edge),
        ),
        row(
            "cloudflare 520: the origin's nginx logs the app closing early",
            cloudflare(520).host(web("web1").ngx("premature_close", "error", PREMATURE, "http://127.0.0.1:3000/")),
            is(PrematureClose, 520, Hop::Edge),
        ),
        row(
            "cloudflare 526 with no origin probe: TLS to the origin",
            cloudflare(526).host(web("web1")),
            is(EdgeTlsToOrigin, 526, Hop::Edge),
        ),
        row(
            "fastly 503 first byte timeout: the app does not answer in time",
            site("shop.example")
                .edge("fastly", 503, "fastly", "first byte timeout", &[("x-served-by", "cache-fra-eddf8230034-FRA"), ("via", "1.1 varnish")])
                .host(web("web1")),
            is(Timeout, 503, Hop::Edge),
        ),
        row(
            "akamai zero size object: the origin's nginx logs the app closing early",
            site("shop.example")
                .edge("akamai", 503, "akamai", "Service Unavailable - Zero size object", &[("server", "AkamaiGHost")])
                .host(web("web1").ngx("premature_close", "error", PREMATURE, "http://127.0.0.1:3000/")),
            is(PrematureClose, 503, Hop::Edge),
        ),
        near(
            "fastly near-miss: the app's own 503 forwarded through Fastly is the app's",
            EdgeGenerated,
            site("shop.example")
                .edge("fastly", 503, "app", "", &[("x-served-by", "cache-fra-eddf8230034-FRA"), ("via", "1.1 varnish")])
                .origin("web1", "ok", 503)
                .host(web("web1")),
            is(UpstreamReturnedError, 503, Hop::Upstream),
        ),
        near(
            "cloudflare near-miss: a branded 502 the origin's nginx made is no edge error",
            EdgeGenerated,
            site("shop.example")
                .edge("cloudflare", 502, "cloudflare_branded", "", CF)
                .host(
                    web("web1")
                        .unit("app.service", "failed", "failed", "upstream")
                        .no_listeners("app.service")
                        .ngx(
                            "service_down|wrong_port|not_listening",
                            "error",
                            "connect() failed (111: Connection refused) while connecting to upstream",
                            "http://127.0.0.1:3000/",
                        ),
                ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
    ]
}

/// An error type this collector does not know stays visible in `missing`.
#[test]
fn an_unknown_proxy_status_error_is_listed_in_missing() {
    let case = status_says(502, "ExampleCDN; error=gremlins").host(web("web1"));
    let v = attribute(&case.0);
    let v = v.first().expect("a verdict");
    assert!(
        v.missing
            .iter()
            .any(|m| m.contains("gremlins") && m.contains("ExampleCDN")),
        "{v:#?}"
    );
    let known = status_says(502, "ExampleCDN; error=connection_timeout").host(web("web1"));
    let v = attribute(&known.0);
    assert!(
        v[0].evidence
            .iter()
            .any(|e| e.detail.contains("error=connection_timeout")),
        "{v:#?}"
    );
}
