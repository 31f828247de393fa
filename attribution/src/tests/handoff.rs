//! Rows for the handoff layer.

use super::*;
use Cause::*;
use gw502_vocab::Source;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const ENOENT: &str = "wrong_socket_path|service_down";
const FPM: &str = "fastcgi://unix:/run/php/php8.2-fpm.sock:";
const FPM_RESET: &str =
    "recv() failed (104: Connection reset by peer) while reading response header from upstream";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

fn refused_to(target: &str) -> Case {
    let upstream = format!("http://{target}/");
    site("shop.example").public("ok", 502, "nginx").host(
        nginx("web1", &format!("http://{target}"))
            .unit("app.service", "active", "running", "upstream")
            .ngx(REFUSED, "error", REFUSED_LINE, &upstream),
    )
}

fn with(s: Case, f: impl FnOnce(Host) -> Host) -> Case {
    let mut s = s;
    let ev = s.0.hosts.remove(0);
    let mut h = host(&ev.host_id);
    h.report = ev.state;
    h.received_ms = ev.last_seen_ms;
    s.host(f(h))
}

/// An edge host (nginx with its own agent, 10.77.0.11) sending the site to
/// `origin:port` on 10.77.0.12, where connects are refused and its probe of
/// the target is refused too.
fn edge_to_origin(port: u16) -> Host {
    let target = format!("10.77.0.12:{port}");
    nginx("edge1", &format!("http://{target}"))
        .addr("10.77.0.11/24")
        .ngx(REFUSED, "error", REFUSED_LINE, &format!("http://{target}/"))
        .probe(&target, "refused", "connect", 0, "")
}

/// The origin (10.77.0.12): nginx serves the site on 80 to its app on 3000,
/// and answers for it, next to the noise of a real host.
fn origin() -> Host {
    web("web1")
        .addr("10.77.0.12/24")
        .noise()
        .access(200, "200", 120)
}

/// An edge to a wrong origin port: the site behind a public 502 of the edge.
fn wrong_origin_port(origin: Host) -> Case {
    site("shop.example")
        .public("ok", 502, "nginx")
        .host(edge_to_origin(8081))
        .host(origin)
}

/// An origin whose only virtual server on port 80 is another site's.
fn other_sites_origin() -> Host {
    origin().edit(|s| {
        let p = &mut s.proxy_config.as_mut().unwrap().proxies[0];
        p.servers[0].names = vec!["blog.example".into()];
        p.targets[0].server_names = vec!["blog.example".into()];
        s.access_log.as_mut().unwrap().counts[0].vhost = "blog.example".into();
    })
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("handoff: the edge sends the site to origin port 8081, the origin serves it on 80", wrong_origin_port(origin()),
            is(WrongPort, 502, Hop::Proxy)),
        row("handoff: edge to a wrong origin port, the collector's origin probe answers 200", wrong_origin_port(origin()).origin("web1", "ok", 200),
            is(WrongPort, 502, Hop::Proxy)),
        near("handoff near-miss: edge to the right origin port, the origin's nginx is stopped", WrongPort,
            site("shop.example").public("ok", 502, "nginx").host(edge_to_origin(80))
                .host(origin().unit("nginx.service", "inactive", "dead", "proxy").event_at("nginx.service", "stop", T0 - 30_000, "Stopped nginx.service")),
            is(ProxyDown, 502, Hop::Edge)),
        near("handoff near-miss: the origin's port 80 serves only another site", WrongPort, wrong_origin_port(other_sites_origin()),
            is(InsufficientEvidence, 502, Hop::Proxy)),
        near("handoff near-miss: the origin's own nginx is stopped too", WrongPort,
            wrong_origin_port(origin().unit("nginx.service", "inactive", "dead", "proxy")),
            is(ProxyDown, 502, Hop::Edge)),
        near("handoff near-miss: the origin's nginx serves the site on 80 only to loopback", WrongPort,
            wrong_origin_port(origin().edit(|s| {
                for l in &mut s.sockets.as_mut().unwrap().listeners {
                    if l.unit == "nginx.service" {
                        l.address = "127.0.0.1".into();
                    }
                }
            })),
            is(InsufficientEvidence, 502, Hop::Proxy)),
        row("handoff: wrong port, app on 3000", with(refused_to("127.0.0.1:3001"), |h| h.tcp("127.0.0.1", 3000, "app.service")), is(WrongPort, 502, Hop::Proxy)),
        near("handoff near-miss: wrong port target but the app is down", WrongPort, with(refused_to("127.0.0.1:3001"), |h| h.unit("app.service", "failed", "failed", "upstream")),
            is(ServiceDown, 502, Hop::Proxy)),
        row("handoff: app binds ::1 while nginx targets 127.0.0.1", with(refused_to("127.0.0.1:3000"), |h| h.tcp("::1", 3000, "app.service")), is(BindMismatch, 502, Hop::Proxy)),
        row("handoff: app binds 127.0.0.1 while nginx targets the host IP", with(refused_to("10.77.0.11:3000"), |h| h.addr("10.77.0.11").tcp("127.0.0.1", 3000, "app.service")),
            is(BindMismatch, 502, Hop::Proxy)),
        near("handoff near-miss: app on another port, not another address", BindMismatch, with(refused_to("127.0.0.1:3000"), |h| h.tcp("127.0.0.1", 8000, "app.service")),
            is(WrongPort, 502, Hop::Proxy)),
        row("handoff: php-fpm on another socket path", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream").unix("/run/php/www.sock", "php8.2-fpm.service", 0o660, 33, 33)
                .ngx(ENOENT, "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream", FPM),
        ), is(WrongSocketPath, 502, Hop::Proxy)),
        near("handoff near-miss: socket missing because php-fpm is stopped", WrongSocketPath, site("shop.example").public("ok", 502, "nginx").host(
            php("web1").unit("php8.2-fpm.service", "inactive", "dead", "upstream")
                .ngx(ENOENT, "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream", FPM),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("handoff: socket owned by root 0600", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream").unix("/run/php/php8.2-fpm.sock", "php8.2-fpm.service", 0o600, 0, 0)
                .ngx("socket_permission_denied", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream", FPM)
                .probe("unix:/run/php/php8.2-fpm.sock", "permission_denied", "connect", 0, ""),
        ), is(SocketPermissionDenied, 502, Hop::Proxy)),
        near("handoff near-miss: EAGAIN on the socket is saturation", SocketPermissionDenied, site("shop.example").public("ok", 502, "nginx").host(
            php("web1").ngx("saturated", "error", "connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream", FPM),
        ), is(Saturated, 502, Hop::Proxy)),
        row("handoff: fastcgi_pass to an HTTP server", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://127.0.0.1:3000").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .ngx("protocol_mismatch", "error", "upstream sent unsupported FastCGI protocol version: 72 while reading response header from upstream", "fastcgi://127.0.0.1:3000")
                .probe("fastcgi://127.0.0.1:3000", "protocol_mismatch", "response", 0, "http_peer: HTTP/1.1 400 Bad Request"),
        ), is(ProtocolMismatch, 502, Hop::Proxy)),
        // nginx's line and the probe's reset as the lab's `protocol_mismatch.nginx.fastcgi`
        // cell recorded them (nginx 1.22, PHP-FPM 8.2 resets an HTTP request).
        row("handoff: proxy_pass (HTTP) to the PHP-FPM socket", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream").unix("/run/php/php8.2-fpm.sock", "php8.2-fpm.service", 0o666, 0, 0)
                .ngx("connection_reset", "error", FPM_RESET, "http://unix:/run/php/php8.2-fpm.sock:/")
                .probe("unix:/run/php/php8.2-fpm.sock", "reset", "response", 0, "Connection reset by peer (os error 104)"),
        ), is(ProtocolMismatch, 502, Hop::Proxy)),
        near("handoff near-miss: an HTTP app on a unix socket resets", ProtocolMismatch, site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://unix:/run/lab-app/app.sock").unit("app.service", "active", "running", "upstream").unix("/run/lab-app/app.sock", "app.service", 0o666, 0, 0)
                .edit(|s| s.sockets.iter_mut().flat_map(|x| x.listeners.iter_mut()).for_each(|l| l.process = "python3".into()))
                .ngx("connection_reset", "error", FPM_RESET, "http://unix:/run/lab-app/app.sock:/")
                .probe("unix:/run/lab-app/app.sock", "reset", "response", 0, "Connection reset by peer (os error 104)"),
        ), is(ConnectionReset, 502, Hop::Proxy)),
        near("handoff near-miss: no valid HTTP/1.0 header from a TLS listener", ProtocolMismatch, with(refused_to("127.0.0.1:3000"), |h| {
            let mut h = h.tcp("127.0.0.1", 3000, "app.service").edit(|s| s.proxy_log = Some(ProxyLogSection::default()));
            h = h.ngx("protocol_mismatch|tls_mismatch", "error", "upstream sent no valid HTTP/1.0 header while reading response header from upstream", "http://127.0.0.1:3000/");
            h.probe("127.0.0.1:3000", "protocol_mismatch", "response", 0, "tls_peer: 15 03 03 00 02 02 46")
        }), is(TlsMismatch, 502, Hop::Proxy)),
        row("handoff: plain http to a TLS listener", with(refused_to("127.0.0.1:3443"), |h| {
            h.tcp("127.0.0.1", 3443, "app.service").edit(|s| s.proxy_log = Some(ProxyLogSection::default()))
                .probe("127.0.0.1:3443", "protocol_mismatch", "response", 0, "tls_peer: plain HTTP request was sent to HTTPS port")
        }), is(TlsMismatch, 502, Hop::Proxy)),
        near("handoff near-miss: TLS fine but certificate expired", TlsMismatch, site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "https://127.0.0.1:3443").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3443, "app.service")
                .ngx("tls_certificate_error", "error", "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream", "https://127.0.0.1:3443/"),
        ), is(TlsCertificateError, 502, Hop::Proxy)),
        row("handoff: upstream certificate for another name", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "https://api.internal:443").dns("api.internal", &["10.77.0.20"], "")
                .ngx("tls_certificate_error", "error", "upstream SSL certificate does not match \"api.internal\" while SSL handshaking to upstream", "https://10.77.0.20:443/")
                .probe("https://api.internal:443", "tls_error", "tls", 0, "certificate_name_mismatch: presented for other.internal"),
        ), is(TlsCertificateError, 502, Hop::Proxy)),
        near("handoff near-miss: handshake to a plain listener", TlsCertificateError, site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "https://127.0.0.1:3000").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .probe("https://127.0.0.1:3000", "tls_error", "tls", 0, "plaintext_peer: HTTP/1.1 400"),
        ), is(TlsMismatch, 502, Hop::Proxy)),
        row("handoff: resolver down", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://app.internal:8080").ngx("dns_failure", "error", "send() failed (111: Connection refused) while resolving, resolver: 127.0.0.1:53", "")
                .dns("app.internal", &[], "connection refused (127.0.0.53:53)"),
        ), is(DnsFailure, 502, Hop::Proxy)),
        near("handoff near-miss: host not found at load time is a config error", DnsFailure, site("shop.example").public("refused", 0, "").host(
            nginx("web1", "http://app.internal:8080").unit("nginx.service", "failed", "failed", "proxy").config_test(false, "nginx: [emerg] host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12")
                .signal("nginx", "proxy_config_invalid", 0, "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12", ""),
        ), is(ProxyConfigInvalid, 0, Hop::Unknown)),
        row("handoff: no route to the app host (reject)", site("shop.example").public("ok", 502, "nginx")
            .host(nginx("web1", "http://10.77.0.12:8080").ngx("firewall_blocked", "error", "connect() failed (113: No route to host) while connecting to upstream", "http://10.77.0.12:8080/"))
            .host(host("app1").addr("10.77.0.12/24").unit("app.service", "active", "running", "upstream").tcp("0.0.0.0", 8080, "app.service")),
            is(FirewallBlocked, 502, Hop::Proxy)),
        row("handoff: upstream name resolves to an address where nothing lives", site("shop.example").public("ok", 504, "nginx")
            .host(nginx("web1", "http://app.internal:8080").addr("10.77.0.11").dns("app.internal", &["10.77.0.99"], "")
                .ngx("firewall_blocked", "error", "upstream timed out (110: Connection timed out) while connecting to upstream", "http://10.77.0.99:8080/")
                .probe("app.internal:8080", "timeout", "connect", 0, ""))
            .host(host("app1").addr("10.77.0.12/24").unit("app.service", "active", "running", "listener").tcp("0.0.0.0", 8080, "app.service")),
            is(DnsFailure, 504, Hop::Proxy)),
        near("handoff near-miss: the name resolves to the app host, the path drops", DnsFailure, site("shop.example").public("ok", 504, "nginx")
            .host(nginx("web1", "http://app.internal:8080").addr("10.77.0.11").dns("app.internal", &["10.77.0.12"], "")
                .ngx("firewall_blocked", "error", "upstream timed out (110: Connection timed out) while connecting to upstream", "http://10.77.0.12:8080/"))
            .host(host("app1").addr("10.77.0.12/24").unit("app.service", "active", "running", "listener").tcp("0.0.0.0", 8080, "app.service")),
            is(FirewallBlocked, 504, Hop::Proxy)),
        near("handoff near-miss: slow response is a timeout, not a firewall", FirewallBlocked, site("shop.example").public("ok", 504, "nginx").host(
            web("web1").ngx("timeout", "error", "upstream timed out (110: Connection timed out) while reading response header from upstream", "http://127.0.0.1:3000/"),
        ), is(Timeout, 504, Hop::Proxy)),
    ]
}

/// The edge's wrong origin port names the edge host, its target and the
/// origin's port, never the origin's app or its noise; confirmed only when
/// the origin answers for the site.
#[test]
fn a_wrong_origin_port_names_the_edge_and_its_target() {
    let answered = attribute(&wrong_origin_port(origin()).origin("web1", "ok", 200).0);
    let v = answered.first().expect("a verdict");
    assert_eq!((v.cause, v.host.as_deref()), (WrongPort, Some("edge1")));
    assert!(
        v.summary.contains("edge1")
            && v.summary.contains("10.77.0.12:8081")
            && v.summary.contains("port 80"),
        "{}",
        v.summary
    );
    assert!(v.next_check.contains("nginx.service"), "{}", v.next_check);
    let text = format!("{} {} {:?}", v.summary, v.next_check, v.evidence);
    assert!(!text.contains("app.service"), "{text}");
    for (unit, _, _) in gw502_testkit::NOISE {
        assert!(!text.contains(unit.trim_end_matches(".service")), "{text}");
    }
    let sources: Vec<Source> = v.evidence.iter().map(|e| e.source).collect();
    for s in [
        Source::ProxyLog,
        Source::Sockets,
        Source::ProxyConfig,
        Source::EdgeProbe,
    ] {
        assert!(sources.contains(&s), "{s:?} in {sources:?}");
    }
    // Nothing shows the origin answering (no access log lines, no probe):
    // the front is still tied by its config, with lower confidence.
    let quiet = web("web1").addr("10.77.0.12/24").noise();
    let unanswered = attribute(&wrong_origin_port(quiet).0);
    let u = unanswered.first().expect("a verdict");
    assert_eq!(u.cause, WrongPort);
    assert!(
        u.confidence < v.confidence,
        "{} < {}",
        u.confidence,
        v.confidence
    );
    assert!(
        u.missing.iter().any(|m| m.contains("no answer from web1")),
        "{:?}",
        u.missing
    );
}

/// Each verdict's cause, status and host.
fn blamed(ev: &crate::SiteEvidence) -> Vec<(Cause, u16, Option<String>)> {
    attribute(ev)
        .into_iter()
        .map(|v| (v.cause, v.status, v.host))
        .collect()
}

/// A rejected certificate that no visitor's answer shows yet (one origin of a round
/// robin, whose proxy still rides connections opened before the certificate
/// expired) carries what the proxy routing to it answers a failed handshake:
/// Apache's `500 Proxy Error`, HAProxy's 503, nginx's 502.
#[test]
fn an_unseen_handshake_failure_has_its_proxys_status() {
    for (kind, unit, status) in [
        ("apache", "apache2.service", 500),
        ("haproxy", "haproxy.service", 503),
        ("nginx", "nginx.service", 502),
    ] {
        let origin = |id: &str| {
            host(id)
                .proxy(kind, unit, "https://127.0.0.1:8443")
                .unit("app.service", "active", "running", "upstream")
                .tcp("127.0.0.1", 8443, "app.service")
        };
        let ev = site("shop.example")
            .public("ok", 200, "")
            .origins(&["web1", "web2"])
            .host(origin("web1").probe(
                "https://127.0.0.1:8443",
                "tls_error",
                "tls",
                0,
                "certificate_expired: certificate expired",
            ))
            .host(origin("web2").probe("https://127.0.0.1:8443", "ok", "", 200, ""))
            .0;
        assert_eq!(
            blamed(&ev),
            [(TlsCertificateError, status, Some("web1".into()))],
            "{kind}"
        );
    }
}

/// A socket whose mode turns away one origin's proxy, before any visitor's answer shows
/// it (a round robin whose visitors the other origin serves): the verdict carries what
/// that proxy answers a refused connect, Apache's and HAProxy's 503, nginx's 502.
#[test]
fn an_unseen_denied_socket_has_its_proxys_status() {
    const SOCK: &str = "unix:/run/php/php8.2-fpm.sock";
    for (kind, unit, status) in [
        ("apache", "apache2.service", 503),
        ("haproxy", "haproxy.service", 503),
        ("nginx", "nginx.service", 502),
    ] {
        let origin = |id: &str, mode: u32| {
            host(id)
                .proxy(kind, unit, &format!("fastcgi://{SOCK}"))
                .unit("php8.2-fpm.service", "active", "running", "upstream")
                .unix("/run/php/php8.2-fpm.sock", "php8.2-fpm.service", mode, 0, 0)
        };
        let ev = site("shop.example")
            .public("ok", 200, "")
            .origins(&["web1", "web2"])
            .host(origin("web1", 0o600).probe(SOCK, "permission_denied", "connect", 0, ""))
            .host(origin("web2", 0o666).probe(SOCK, "ok", "", 200, ""))
            .0;
        assert_eq!(
            blamed(&ev),
            [(SocketPermissionDenied, status, Some("web1".into()))],
            "{kind}"
        );
    }
}
