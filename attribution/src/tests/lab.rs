//! The 14 lab scenarios as rows, with the evidence the real lab produces.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const APP: &str = "http://127.0.0.1:3000/";

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("lab 01 app stopped", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").unit("app.service", "inactive", "dead", "upstream").event_at("app.service", "stop", T0 - 60_000, "Stopped app.service")
                .ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", APP)
                .access(502, "502", 40).probe("127.0.0.1:3000", "refused", "connect", 0, ""),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("lab 02 crash loop", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").unit("app.service", "activating", "auto-restart", "upstream").restarts("app.service", 7)
                .event_at("app.service", "exit", T0, "code=exited, status=1/FAILURE").event_at("app.service", "restart", T0 + 5_000, "Scheduled restart job, restart counter is at 6")
                .event_at("app.service", "exit", T0 + 20_000, "code=exited, status=1/FAILURE")
                .ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", APP),
        ), is(CrashLoop, 502, Hop::Proxy)),
        row("lab 03 wrong port", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://127.0.0.1:3001").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", "http://127.0.0.1:3001/")
                .probe("127.0.0.1:3001", "refused", "connect", 0, ""),
        ), is(WrongPort, 502, Hop::Proxy)),
        row("lab 04 wrong socket path", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream")
                .unix("/run/php/php-fpm-www.sock", "php8.2-fpm.service", 0o660, 33, 33)
                .ngx("wrong_socket_path|service_down", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream", "fastcgi://unix:/run/php/php8.2-fpm.sock:"),
        ), is(WrongSocketPath, 502, Hop::Proxy)),
        row("lab 05 https to plain", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "https://127.0.0.1:3000").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .ngx("tls_mismatch", "error", "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", "https://127.0.0.1:3000/")
                .probe("https://127.0.0.1:3000", "tls_error", "tls", 0, "plaintext_peer: HTTP/1.1 400 Bad Request"),
        ), is(TlsMismatch, 502, Hop::Proxy)),
        row("lab 06 unresolvable upstream", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://app.internal:8080").dns("app.internal", &[], "NXDOMAIN")
                .ngx("dns_failure", "error", "app.internal could not be resolved (3: Host not found)", "")
                .probe("app.internal:8080", "dns_error", "connect", 0, "failed to lookup address information: Name or service not known"),
        ), is(DnsFailure, 502, Hop::Proxy)),
        row("lab 07 firewall drop", site("shop.example").public("ok", 504, "nginx")
            .host(nginx("web1", "http://10.77.0.12:8080").addr("10.77.0.11")
                .ngx("firewall_blocked", "error", "upstream timed out (110: Connection timed out) while connecting to upstream", "http://10.77.0.12:8080/")
                .access(504, "504", 9).probe("10.77.0.12:8080", "timeout", "connect", 0, ""))
            .host(host("app1").addr("10.77.0.12").unit("app.service", "active", "running", "upstream").tcp("0.0.0.0", 8080, "app.service")),
        is(FirewallBlocked, 504, Hop::Proxy)),
        row("lab 08 64 KB headers", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").ngx("header_too_big", "error", "upstream sent too big header while reading response header from upstream", APP)
                .probe("127.0.0.1:3000", "header_too_big", "response", 0, "").edit(|s| s.probes.as_mut().unwrap().probes[0].header_bytes = 65_600),
        ), is(HeaderTooBig, 502, Hop::Proxy)),
        row("lab 09 premature close", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").ngx("premature_close", "error", "upstream prematurely closed connection while reading response header from upstream", APP)
                .probe("127.0.0.1:3000", "premature_close", "response", 0, ""),
        ), is(PrematureClose, 502, Hop::Proxy)),
        // Matrix `connection_reset.nginx.https.*`: over TLS nginx logs the app's RST as a
        // premature close; the probe saw the reset.
        near("matrix: a reset over TLS logged as a close", PrematureClose, site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "https://127.0.0.1:8443").ngx("premature_close", "error", "upstream prematurely closed connection while reading response header from upstream", "https://127.0.0.1:8443/")
                .probe("127.0.0.1:8443", "reset", "response", 0, "Connection reset by peer (os error 104)"),
        ), is(ConnectionReset, 502, Hop::Proxy)),
        row("lab 10 nginx stopped behind haproxy edge", site("shop.example").public("ok", 503, "haproxy").origin("web1", "refused", 0).host(
            web("web1").unit("nginx.service", "inactive", "dead", "proxy").event_at("nginx.service", "stop", T0 - 30_000, "Stopped nginx.service"),
        ), is(ProxyDown, 503, Hop::Edge)),
        row("lab 11 app returns 503", site("shop.example").public("ok", 503, "app").host(
            web("web1").access(503, "503", 25).probe("127.0.0.1:3000", "ok", "response", 503, ""),
        ), is(UpstreamReturnedError, 503, Hop::Upstream)),
        row("lab 12 php-fpm max_children", site("shop.example").public("ok", 504, "nginx").host(
            php("web1").journal("php8.2-fpm.service", 4, "WARNING: [pool www] server reached pm.max_children setting (5), consider raising it")
                .ngx("timeout", "error", "upstream timed out (110: Connection timed out) while reading response header from upstream", "fastcgi://unix:/run/php/php8.2-fpm.sock:")
                .access(504, "504", 30),
        ), is(Saturated, 504, Hop::Proxy)),
        row("lab 13 healthy", site("shop.example").public("ok", 200, "app").origin("web1", "ok", 200).host(web("web1").access(200, "200", 500)), None),
        row("lab 14 recovered", site("shop.example").public_from("collector/c1", T0, "ok", 502, "nginx").public("ok", 200, "app").host(
            web("web1").event_at("app.service", "start", NOW - 60_000, "Started app.service").edit(|s| {
                let sig = LogSignal { proxy: "nginx".into(), upstream: APP.into(), cause: REFUSED.into(), count: 30, first_at_ms: T0, last_at_ms: NOW - 70_000, server: "shop.example".into(), samples: vec![ngx("error", "connect() failed (111: Connection refused) while connecting to upstream", APP)], ..Default::default() };
                s.proxy_log.get_or_insert_default().signals.push(sig);
            }),
        ), None),
    ]
}
