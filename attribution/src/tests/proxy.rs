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
        row("proxy: nginx not up yet at boot, apache2 installed and disabled", site("shop.example").public("refused", 0, "").host(
            web("web1").idle_proxy("apache", "apache2.service", false).unit("nginx.service", "inactive", "dead", "proxy"),
        ), is(ProxyDown, 0, Hop::Unknown)),
        row("proxy: apache stopped, caddy installed and masked", site("shop.example").public("refused", 0, "").host(
            host("web1").proxy("apache", "apache2.service", "http://127.0.0.1:8080").idle_proxy("caddy", "caddy.service", true)
                .unit("apache2.service", "failed", "failed", "proxy"),
        ), is(ProxyDown, 0, Hop::Unknown)),
        near("proxy near-miss: a disabled apache2 fails its config test on an nginx host", ProxyConfigInvalid, site("shop.example").public("ok", 502, "nginx").host(
            web("web1").idle_proxy("apache", "apache2.service", false).edit(|s| {
                let apache = s.proxy_config.as_mut().unwrap().proxies.iter_mut().find(|p| p.kind == "apache").unwrap();
                apache.test = Some(ConfigTest { ran: true, ok: false, output: "AH00526: Syntax error on line 3 of /etc/apache2/sites-enabled/000-default.conf".into() });
            }),
        ), is(InsufficientEvidence, 502, Hop::Proxy)),
    ]
}

/// A proxy verdict names the proxy whose config serves the site, never an
/// installed, disabled or masked other one.
#[test]
fn only_the_sites_proxy_is_named() {
    for (name, own, other) in [
        (
            "proxy: nginx not up yet at boot, apache2 installed and disabled",
            "nginx.service",
            "apache2",
        ),
        (
            "proxy: apache stopped, caddy installed and masked",
            "apache2.service",
            "caddy",
        ),
    ] {
        let r = rows().into_iter().find(|r| r.name == name).expect("row");
        let v = attribute(&r.ev).remove(0);
        let text = format!("{} {} {:?}", v.summary, v.next_check, v.evidence);
        assert!(text.contains(own), "{name}: {text}");
        assert!(!text.contains(other), "{name}: names {other}: {text}");
    }
}

/// A proxy that died of a signal is named as crashed, with the signal: HAProxy's
/// master passes a worker's SIGSEGV on as exit status 139 (128+11), systemd reports a
/// process the kernel killed with the signal itself. Its "job start failed" once the
/// restarts ran out says nothing of its config. A stop's SIGTERM is no crash, and a
/// start that failed without a crash still points at the config.
#[test]
fn a_proxy_that_died_of_a_signal_is_named_as_crashed() {
    let crashed = |code: i32, status: i32| {
        let ev = site("shop.example").public("refused", 0, "").host(
            host("web1")
                .proxy("haproxy", "haproxy.service", "http://127.0.0.1:3000")
                .unit("haproxy.service", "failed", "failed", "proxy")
                .event("haproxy.service", "fail", 5_000, "job start failed")
                .edit(|s| {
                    for u in &mut s.systemd.get_or_insert_default().units {
                        u.n_restarts = 6;
                        u.exec_main_code = code;
                        u.exec_main_status = status;
                    }
                }),
        );
        let v = attribute(&ev.0).remove(0);
        assert_eq!(v.status, 0);
        let evidence: Vec<&str> = v.evidence.iter().map(|e| e.detail.as_str()).collect();
        (v.cause, v.summary, v.next_check, evidence.join(" | "))
    };
    let (cause, summary, check, evidence) = crashed(1, 139);
    assert_eq!(cause, ProxyDown);
    assert!(summary.contains("crashed"), "{summary}");
    assert!(check.contains("died of SIGSEGV (restarts=6)"), "{check}");
    assert!(
        evidence.contains("exit_status=139 (128+SIGSEGV)"),
        "{evidence}"
    );

    let (cause, summary, check, evidence) = crashed(3, 6);
    assert_eq!(cause, ProxyDown);
    assert!(summary.contains("crashed"), "{summary}");
    assert!(check.contains("died of SIGABRT"), "{check}");
    assert!(evidence.contains("signal=SIGABRT"), "{evidence}");

    for (code, status) in [(1, 143), (2, 15), (1, 1)] {
        let (cause, summary, _, evidence) = crashed(code, status);
        assert_eq!(cause, ProxyConfigInvalid, "{code}/{status}: {evidence}");
        assert!(!summary.contains("crashed"), "{code}/{status}: {summary}");
    }
}
