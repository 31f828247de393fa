//! Rows for HAProxy-, Apache- and Caddy-fronted hosts and CDN edges.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";

pub(super) fn rows() -> Vec<Row> {
    let haproxy = |h: Host| {
        h.proxy("haproxy", "haproxy.service", "http://127.0.0.1:3000")
            .unit("app.service", "active", "running", "upstream")
            .tcp("127.0.0.1", 3000, "app.service")
    };
    let apache = |h: Host| {
        h.proxy("apache", "apache2.service", "http://127.0.0.1:8080")
            .unit("app.service", "active", "running", "upstream")
            .tcp("127.0.0.1", 8080, "app.service")
    };
    let caddy = |h: Host| {
        h.proxy("caddy", "caddy.service", "http://127.0.0.1:4040")
            .unit("app.service", "active", "running", "upstream")
            .tcp("127.0.0.1", 4040, "app.service")
    };
    let sc = "10.77.0.1:51234 [01/May/2024:10:00:00.123] fe_shop be_app/app1 0/0/-1/-1/0 503 217 - - SCNN 1/1/0/0/3 0/0 \"GET / HTTP/1.1\"";
    let nosrv = "10.77.0.1:51240 [01/May/2024:10:00:01.001] fe_shop be_app/<NOSRV> 0/-1/-1/-1/0 503 217 - - SCNN 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
    let ah00957 = "[Wed May 01 10:00:00.123456 2024] [proxy:error] [pid 2211:tid 2233] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:8081 (127.0.0.1:8081) failed";
    let ah01102 = "[Wed May 01 10:00:00.123456 2024] [proxy_http:error] [pid 2211:tid 2233] (104)Connection reset by peer: [client 10.77.0.1:5050] AH01102: error reading status line from remote server 127.0.0.1:8080";
    let caddy_refused = r#"{"level":"error","ts":1714557500.1,"logger":"http.log.error","msg":"dial tcp 127.0.0.1:4040: connect: connection refused","request":{"host":"shop.example"},"status":502}"#;
    let caddy_timeout = r#"{"level":"error","ts":1714557500.1,"logger":"http.log.error","msg":"net/http: timeout awaiting response headers","status":504}"#;
    let sh = sc.replace("SCNN", "SHNN").replace(" 503 217", " 502 209");
    let sq = sc.replace("SCNN", "sQNN");
    let cloudfront = [
        ("x-cache", "Error from cloudfront"),
        ("via", "1.1 0a1b2c.cloudfront.net (CloudFront)"),
        ("x-amz-cf-id", "Qz1x"),
    ];
    // HAProxy to an app host whose packets are dropped: `sC` after its connect
    // retries (20 s, a real line from the lab matrix), later than the public probe
    // waits; the app host's own agent shows the app listening.
    let sc_late = "10.77.0.1:41908 [01/Dec/2026:18:53:48.770] site app/app1 43/0/-1/-1/20049 503 217 - - sC-- 5/5/4/4/3 0/0 \"GET / HTTP/1.0\"";
    let dropped = |h: Host| {
        h.proxy("haproxy", "haproxy.service", "http://10.77.0.12:8080")
            .addr("10.77.0.11/24")
            .probe("10.77.0.12:8080", "timeout", "connect", 0, "")
    };
    let app_host = || {
        host("app1")
            .addr("10.77.0.12/24")
            .unit("app.service", "active", "running", "listener")
            .tcp("0.0.0.0", 8080, "app.service")
    };
    // Apache to an app host whose packets are dropped: new connects time out
    // (`connectiontimeout`) and answer 503; the reads it had in flight on kept-alive
    // connections gave up first, with AH01102's 502 (lines from the lab matrix).
    let ah01102_drop = "[Thu Dec 03 07:57:25.004849 2026] [proxy_http:error] [pid 61:tid 102] (70007)The timeout specified has expired: [client 10.77.0.1:58236] AH01102: error reading status line from remote server 10.77.0.12:8080";
    let ah00957_drop = "[Thu Dec 03 07:57:29.011337 2026] [proxy:error] [pid 61:tid 103] (70007)The timeout specified has expired: AH00957: http: attempt to connect to 10.77.0.12:8080 (10.77.0.12:8080) failed";
    let apache_dropped = |h: Host| {
        h.proxy("apache", "apache2.service", "http://10.77.0.12:8080")
            .addr("10.77.0.11/24")
            .probe("10.77.0.12:8080", "timeout", "connect", 0, "")
    };
    vec![
        row("apache: a dropped connect before any visitor's answer: its model's 503, not nginx's 504",
            site("shop.example").host(apache_dropped(host("web1"))).host(app_host()),
            is(FirewallBlocked, 503, Hop::Proxy)),
        row("apache: the public probe gave up: the newest logged answer, the connect timeout's 503, not the reads' earlier 502",
            site("shop.example").public("timeout", 0, "").host(apache_dropped(host("web1"))
                .signal("apache", "timeout", 502, ah01102_drop, "10.77.0.12:8080")
                .signal("apache", "firewall_blocked", 503, ah00957_drop, "10.77.0.12:8080")
                .edit(|r| r.proxy_log.as_mut().unwrap().signals[0].last_at_ms -= 4_000))
            .host(app_host()),
            is(FirewallBlocked, 503, Hop::Proxy)),
        row("haproxy: sC after its retries, the public probe gave up first: the logged 503", site("shop.example").public("timeout", 0, "")
            .host(dropped(host("lb1")).signal("haproxy", "firewall_blocked", 503, sc_late, "10.77.0.12:8080")).host(app_host()),
            is(FirewallBlocked, 503, Hop::Proxy)),
        row("haproxy near-miss: a public timeout with nothing logged has no status", site("shop.example").public("timeout", 0, "")
            .host(dropped(host("lb1"))).host(app_host()),
            is(FirewallBlocked, 0, Hop::Unknown)),
        row("haproxy: SC to a stopped app", site("shop.example").public("ok", 503, "haproxy").host(
            haproxy(host("lb1")).unit("app.service", "inactive", "dead", "upstream").signal("haproxy", REFUSED, 503, sc, "127.0.0.1:3000"),
        ), is(ServiceDown, 503, Hop::Proxy)),
        row("haproxy: NOSRV, every server down", site("shop.example").public("ok", 503, "haproxy").host(
            haproxy(host("lb1")).signal("haproxy", "no_live_upstreams", 503, nosrv, ""),
        ), is(NoLiveUpstreams, 503, Hop::Proxy)),
        row("apache: AH00957 refused, app on 8080", site("shop.example").public("ok", 503, "apache").host(
            apache(host("web1")).signal("apache", REFUSED, 503, ah00957, "127.0.0.1:8081"),
        ), is(WrongPort, 503, Hop::Proxy)),
        row("apache: AH01102 status line", site("shop.example").public("ok", 502, "apache").host(
            apache(host("web1")).signal("apache", "premature_close", 502, ah01102, "127.0.0.1:8080"),
        ), is(PrematureClose, 502, Hop::Proxy)),
        row("caddy: dial refused, app alive without a socket", site("shop.example").public("ok", 502, "caddy").host(
            caddy(host("web1")).no_listeners("app.service").signal("caddy", REFUSED, 502, caddy_refused, "127.0.0.1:4040"),
        ), is(NotListening, 502, Hop::Proxy)),
        row("caddy: unlabelled timeout line", site("shop.example").host(caddy(host("web1")).signal("caddy", "", 504, caddy_timeout, "127.0.0.1:4040")),
            is(Timeout, 504, Hop::Proxy)),
        row("cloudflare branded 502 passed through from nginx", site("shop.example").edge("cloudflare", 502, "cloudflare_branded", "", &[("server", "cloudflare")]).host(
            web("web1").unit("app.service", "failed", "failed", "upstream").ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", "http://127.0.0.1:3000/"),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("cloudfront OriginConnectError with nginx stopped", site("shop.example").edge("cloudfront", 502, "cloudfront", "OriginConnectError", &cloudfront)
            .origin("web1", "refused", 0).host(web("web1").unit("nginx.service", "inactive", "dead", "proxy")), is(ProxyDown, 502, Hop::Edge)),
        row("cloudfront OriginDnsError", site("shop.example").edge("cloudfront", 502, "cloudfront", "OriginDnsError", &cloudfront).host(web("web1")),
            is(EdgeOriginDns, 502, Hop::Edge)),
        row("two origins, only web2 fails", site("shop.example").origins(&["web1", "web2"]).public("ok", 502, "nginx").host(web("web1").access(200, "200", 400))
            .host(web("web2").unit("app.service", "failed", "failed", "upstream").ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", "http://127.0.0.1:3000/")),
            is(ServiceDown, 502, Hop::Proxy)),
        row("stale agent still attributes, lower confidence", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").stale().unit("app.service", "inactive", "dead", "upstream").ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", "http://127.0.0.1:3000/"),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row(
            "haproxy: SH candidate set decided by a reset probe",
            site("shop.example")
                .public("ok", 502, "haproxy")
                .host(
                    haproxy(host("lb1"))
                        .signal("haproxy", "premature_close|connection_reset", 502, &sh, "127.0.0.1:3000")
                        .probe("127.0.0.1:3000", "reset", "response", 0, "connection reset by peer"),
                ),
            is(ConnectionReset, 502, Hop::Proxy),
        ),
        row(
            "haproxy: sQ queue timeout is saturation",
            site("shop.example")
                .public("ok", 503, "haproxy")
                .host(haproxy(host("lb1")).signal("haproxy", "saturated", 503, &sq, "127.0.0.1:3000")),
            is(Saturated, 503, Hop::Proxy),
        ),
        row(
            "nginx: unix socket refused while php-fpm is stopped",
            site("shop.example").public("ok", 502, "nginx").host(
                php("web1").unit("php8.2-fpm.service", "failed", "failed", "upstream").ngx(
                    "service_down|not_listening",
                    "error",
                    "connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to upstream",
                    "fastcgi://unix:/run/php/php8.2-fpm.sock:",
                ),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
    ]
}
