//! Rows for the upstream layer.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const APP: &str = "http://127.0.0.1:3000/";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";
const SLOW_LINE: &str =
    "upstream timed out (110: Connection timed out) while reading response header from upstream";
const FPM: &str = "fastcgi://unix:/run/php/php8.2-fpm.sock:";

fn refused(h: Host) -> Case {
    site("shop.example")
        .public("ok", 502, "nginx")
        .host(h.ngx(REFUSED, "error", REFUSED_LINE, APP))
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("upstream: app failed with exit code", refused(web("web1").unit("app.service", "failed", "failed", "upstream")), is(ServiceDown, 502, Hop::Proxy)),
        near("upstream near-miss: app alive on ::1 only", ServiceDown, refused(web("web1").no_listeners("app.service").tcp("::1", 3000, "app.service")),
            is(BindMismatch, 502, Hop::Proxy)),
        row("upstream: restart counter and exits", refused(web("web1").unit("app.service", "failed", "failed", "upstream").restarts("app.service", 5)
            .event_at("app.service", "exit", T0, "code=exited, status=2").event_at("app.service", "exit", T0 + 30_000, "code=exited, status=2")), is(CrashLoop, 502, Hop::Proxy)),
        near("upstream near-miss: stopped once, no restarts", CrashLoop, refused(web("web1").unit("app.service", "inactive", "dead", "upstream").event_at("app.service", "stop", T0 - 10_000, "Stopped")),
            is(ServiceDown, 502, Hop::Proxy)),
        row("upstream: app running but listening nowhere", refused(web("web1").no_listeners("app.service")), is(NotListening, 502, Hop::Proxy)),
        near("upstream near-miss: app running on another port", NotListening, refused(web("web1").no_listeners("app.service").tcp("127.0.0.1", 3005, "app.service")),
            is(WrongPort, 502, Hop::Proxy)),
        row("upstream: accept queue full", site("shop.example").public("ok", 502, "nginx").host(
            php("web1").edit(|s| {
                let l = &mut s.sockets.as_mut().unwrap().listeners;
                if let Some(l) = l.iter_mut().find(|l| l.family == "unix") {
                    l.queued = 511;
                    l.overflows = 120;
                }
            }).ngx("saturated", "error", "connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream", FPM)
              .probe("unix:/run/php/php8.2-fpm.sock", "saturated", "connect", 0, ""),
        ), is(Saturated, 502, Hop::Proxy)),
        near("upstream near-miss: slow app, pool fine", Saturated, site("shop.example").public("ok", 504, "nginx").host(web("web1").ngx("timeout", "error", SLOW_LINE, APP).access(504, "504", 7)),
            is(Timeout, 504, Hop::Proxy)),
        row("upstream: response header timeout", site("shop.example").host(web("web1").ngx("timeout", "error", SLOW_LINE, APP).access(504, "504", 7)
            .probe("127.0.0.1:3000", "timeout", "response", 0, "")), is(Timeout, 504, Hop::Proxy)),
        near("upstream near-miss: timeout with pm.max_children reached", Timeout, site("shop.example").host(
            php("web1").ngx("timeout", "error", SLOW_LINE, FPM).journal("php8.2-fpm.service", 4, "WARNING: [pool www] server reached pm.max_children setting (10), consider raising it"),
        ), is(Saturated, 504, Hop::Proxy)),
        row("upstream: app answers 503 itself (no public probe)", site("shop.example").host(web("web1").access(503, "503", 40)), is(UpstreamReturnedError, 503, Hop::Upstream)),
        row("upstream: app 500 seen through the direct probe", site("shop.example").public("ok", 500, "app").host(web("web1").probe("127.0.0.1:3000", "ok", "response", 500, "")),
            is(UpstreamReturnedError, 500, Hop::Upstream)),
        near("upstream near-miss: nginx's own 502 logs upstream_status 502 too", UpstreamReturnedError, site("shop.example").host(
            web("web1").unit("app.service", "inactive", "dead", "upstream").access(502, "502", 12).ngx(REFUSED, "error", REFUSED_LINE, APP),
        ), is(ServiceDown, 502, Hop::Proxy)),
    ]
}
