//! Rows for Varnish as a cache hop: in front of the app, and in front of
//! nginx on the same host. Varnish answers every failed fetch with its own
//! 503 (`emitted_by: cache`); the layer is wherever the fetch failed. Its
//! lines are the agent's samples of the captured `FetchError` records
//! (`proxy/fixtures/varnish/`).

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const FAIL_111: &str = "FetchError backend default: fail errno 111 (Connection refused)";
const BACKEND: &str = "http://127.0.0.1:8080";

/// Varnish on 80 caching the app on 127.0.0.1:8080.
fn cache(id: &str) -> Host {
    host(id).proxy("varnish", "varnish.service", BACKEND)
}

fn app_up(h: Host) -> Host {
    h.unit("app.service", "active", "running", "upstream")
        .tcp("127.0.0.1", 8080, "app.service")
}

/// Varnish on 80 in front of nginx on 127.0.0.1:8080, nginx to the app on 3000.
fn cache_then_nginx(id: &str) -> Host {
    nginx_behind_cache(id)
        .unit("app.service", "active", "running", "upstream")
        .tcp("127.0.0.1", 3000, "app.service")
}

/// Varnish on 80 in front of nginx on 127.0.0.1:8080, nginx to 3000; no app seen.
fn nginx_behind_cache(id: &str) -> Host {
    host(id)
        .proxy("varnish", "varnish.service", BACKEND)
        .proxy("nginx", "nginx.service", "http://127.0.0.1:3000")
        .edit(|s| {
            for p in &mut s.proxy_config.get_or_insert_default().proxies {
                if p.kind == "nginx" {
                    p.servers[0].listens = vec!["127.0.0.1:8080".into()];
                }
            }
            s.sockets
                .get_or_insert_default()
                .listeners
                .retain(|l| l.unit != "nginx.service");
        })
        .tcp("127.0.0.1", 8080, "nginx.service")
}

/// nginx behind the cache refused by its target on 3000; nginx's 502 passes
/// through Varnish.
fn nginx_refused(h: Host) -> Case {
    site("shop.example").public("ok", 502, "nginx").host(
        h.ngx(
            REFUSED,
            "error",
            "connect() failed (111: Connection refused) while connecting to upstream",
            "http://127.0.0.1:3000/",
        )
        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
        .probe("127.0.0.1:8080", "ok", "response", 502, ""),
    )
}

/// A backend the probe marked sick, as `varnishadm backend.list -j` says.
fn sick(h: Host) -> Host {
    h.edit(|s| {
        for p in &mut s.proxy_config.get_or_insert_default().proxies {
            if p.kind == "varnish" {
                p.runtime = Some(ProxyRuntime {
                    backends: vec![BackendHealth {
                        name: "boot.default".into(),
                        address: "127.0.0.1:8080".into(),
                        health: "sick".into(),
                        admin: "probe".into(),
                        probe_good: 0,
                        probe_window: 5,
                        last_change_ms: T0,
                    }],
                    ..ProxyRuntime::default()
                });
            }
        }
    })
}

pub(super) fn rows() -> Vec<Row> {
    let page = |s: Case| s.public("ok", 503, "varnish");
    vec![
        row(
            "varnish: the app behind the cache is stopped",
            page(site("shop.example")).host(
                cache("web1")
                    .unit("app.service", "inactive", "dead", "upstream")
                    .signal("varnish", REFUSED, 503, FAIL_111, BACKEND)
                    .probe("127.0.0.1:8080", "refused", "connect", 0, ""),
            ),
            is(ServiceDown, 503, Hop::Cache),
        ),
        near(
            "varnish: the probe marked the backend sick because the app is stopped",
            NoLiveUpstreams,
            page(site("shop.example")).host(
                sick(cache("web1"))
                    .unit("app.service", "inactive", "dead", "upstream")
                    .signal(
                        "varnish",
                        "no_live_upstreams",
                        503,
                        "FetchError backend default: unhealthy",
                        BACKEND,
                    )
                    .probe("127.0.0.1:8080", "refused", "connect", 0, ""),
            ),
            is(ServiceDown, 503, Hop::Cache),
        ),
        row(
            "varnish: first byte timeout is a timeout with Varnish's 503",
            page(site("shop.example")).host(
                app_up(cache("web1"))
                    .signal(
                        "varnish",
                        "timeout",
                        503,
                        "FetchError first byte timeout",
                        BACKEND,
                    )
                    .probe(
                        "127.0.0.1:8080",
                        "timeout",
                        "response",
                        0,
                        "no response header in 10s",
                    ),
            ),
            is(Timeout, 503, Hop::Cache),
        ),
        row(
            "varnish: HTC eof, the app closes before a header",
            page(site("shop.example")).host(
                app_up(cache("web1"))
                    .signal(
                        "varnish",
                        "premature_close|connection_reset",
                        503,
                        "FetchError HTC eof (-1)",
                        BACKEND,
                    )
                    .probe("127.0.0.1:8080", "premature_close", "response", 0, ""),
            ),
            is(PrematureClose, 503, Hop::Cache),
        ),
        row(
            "varnish: overflow, the app's header is over http_resp_hdr_len",
            page(site("shop.example")).host(app_up(cache("web1")).signal(
                "varnish",
                "header_too_big",
                503,
                "FetchError overflow",
                BACKEND,
            )),
            is(HeaderTooBig, 503, Hop::Cache),
        ),
        row(
            "varnish: the app's own 503 passes through the cache",
            site("shop.example")
                .public("ok", 503, "app")
                .host(app_up(cache("web1")).probe("127.0.0.1:8080", "ok", "response", 503, "")),
            is(UpstreamReturnedError, 503, Hop::Upstream),
        ),
        row(
            "varnish in front of nginx: nginx is stopped",
            page(site("shop.example")).host(
                cache_then_nginx("web1")
                    .unit("nginx.service", "inactive", "dead", "proxy")
                    .signal("varnish", REFUSED, 503, FAIL_111, BACKEND)
                    .probe("127.0.0.1:8080", "refused", "connect", 0, ""),
            ),
            is(ProxyDown, 503, Hop::Cache),
        ),
        near(
            "varnish in front of nginx: the app is stopped, nginx's 502 passes through",
            ProxyDown,
            nginx_refused(cache_then_nginx("web1").unit(
                "app.service",
                "inactive",
                "dead",
                "upstream",
            )),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        near(
            "varnish in front of nginx near-miss: cold start, nothing tied to nginx's refused target; nginx's own 502 is no app's",
            UpstreamReturnedError,
            nginx_refused(
                nginx_behind_cache("web1")
                    .unit("app.service", "active", "running", "listener")
                    .tcp("127.0.0.1", 3005, "app.service"),
            ),
            is(InsufficientEvidence, 502, Hop::Proxy),
        ),
        near(
            "varnish near-miss: stopped nginx elsewhere is not the cache's backend",
            ProxyDown,
            page(site("shop.example")).host(
                cache("web1")
                    .unit("app.service", "inactive", "dead", "upstream")
                    .idle_proxy("nginx", "nginx.service", false)
                    .signal("varnish", REFUSED, 503, FAIL_111, BACKEND)
                    .probe("127.0.0.1:8080", "refused", "connect", 0, ""),
            ),
            is(ServiceDown, 503, Hop::Cache),
        ),
    ]
}
