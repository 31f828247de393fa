//! Rows for the proxy layer.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const APP: &str = "http://127.0.0.1:3000/";
const EMERG: &str = "nginx: [emerg] host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12\nnginx: configuration file /etc/nginx/nginx.conf test failed";

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("proxy: nginx inactive, public refused", site("shop.example").public("refused", 0, "").host(web("web1").unit("nginx.service", "inactive", "dead", "proxy")),
            is(ProxyDown, 0, Hop::Unknown)),
        row("proxy: nginx active but nothing on 443", site("shop.example").public("refused", 0, "").host(web("web1").no_listeners("nginx.service")),
            is(ProxyDown, 0, Hop::Unknown)),
        near("proxy near-miss: nginx running, app down", ProxyDown, site("shop.example").public("ok", 502, "nginx").host(
            web("web1").unit("app.service", "inactive", "dead", "upstream").ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", APP),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("proxy: nginx failed to start, config test emerg", site("shop.example").public("refused", 0, "").host(
            web("web1").unit("nginx.service", "failed", "failed", "proxy").config_test(false, EMERG)
                .journal("nginx.service", 0, "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12"),
        ), is(ProxyConfigInvalid, 0, Hop::Unknown)),
        row("proxy: emerg line in the error log, nginx down behind cloudflare 521", site("shop.example").edge("cloudflare", 521, "cloudflare_unbranded", "", &[("cf-ray", "8f1e2d3c4b5a6978-FRA")]).host(
            web("web1").unit("nginx.service", "failed", "failed", "proxy")
                .signal("nginx", "proxy_config_invalid", 0, "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12", ""),
        ), is(ProxyConfigInvalid, 521, Hop::Edge)),
        near("proxy near-miss: config test fails but nginx serves and the app is down", ProxyConfigInvalid, site("shop.example").public("ok", 502, "nginx").host(
            web("web1").config_test(false, EMERG).unit("app.service", "failed", "failed", "upstream")
                .ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", APP),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("proxy: no live upstreams", site("shop.example").public("ok", 502, "nginx").host(
            web("web1").ngx("no_live_upstreams", "error", "no live upstreams while connecting to upstream", "http://backend/").access(502, "-", 80),
        ), is(NoLiveUpstreams, 502, Hop::Proxy)),
        near("proxy near-miss: no live upstreams after refusals from a stopped app", NoLiveUpstreams, site("shop.example").public("ok", 502, "nginx").host(
            web("web1").unit("app.service", "inactive", "dead", "upstream").ngx("no_live_upstreams", "error", "no live upstreams while connecting to upstream", "http://backend/")
                .ngx(REFUSED, "error", "connect() failed (111: Connection refused) while connecting to upstream", APP),
        ), is(ServiceDown, 502, Hop::Proxy)),
    ]
}
