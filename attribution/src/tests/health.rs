//! Rows for the proxy's own health view behind `no_live_upstreams`: Traefik
//! services whose every server its API reports `DOWN`, Envoy clusters whose
//! hosts its admin `/clusters` flags `/failed_active_hc` or
//! `/failed_outlier_check`. The routers, services, clusters and health are
//! the captured answers of the real Traefik 3.7.15 and Envoy 1.40.0
//! (`proxy/fixtures/traefik/api-*.json`, `proxy/fixtures/envoy/config_dump.json`
//! and `clusters.json`), read by the proxy model's own parsers, and the log
//! lines are the captured ones of the same runs. The site is the captured
//! virtual host (`down.test`, `ejected.test`, `nxdomain.test`).
//!
//! Same reasoning as HAProxy's `<NOSRV>` and Varnish's sick backend: when the
//! host shows why the servers are down (the app stopped), that cause wins;
//! when it does not, `no_live_upstreams` stands, confirmed and cited.

use gw502_proxy::{envoy, traefik};
use gw502_testkit::Clock;

use super::*;
use Cause::*;

const ROUTERS: &str = include_str!("../../../proxy/fixtures/traefik/api-routers.json");
const SERVICES: &str = include_str!("../../../proxy/fixtures/traefik/api-services.json");
const DUMP: &str = include_str!("../../../proxy/fixtures/envoy/config_dump.json");
const CLUSTERS: &str = include_str!("../../../proxy/fixtures/envoy/clusters.json");
const TRAEFIK_LOG: &str = include_str!("../../../proxy/fixtures/traefik/access.json.log");
const ENVOY_LOG: &str = include_str!("../../../proxy/fixtures/envoy/access.log");

/// The captured line for `vhost` with `fragment`, labelled by the model's parser:
/// (sample, cause label, status).
fn captured(kind: &str, vhost: &str, fragment: &str) -> (&'static str, String, u32) {
    let log = if kind == "traefik" {
        TRAEFIK_LOG
    } else {
        ENVOY_LOG
    };
    let sample = log
        .lines()
        .find(|l| l.contains(&format!("\"{vhost}\"")) && l.contains(fragment))
        .unwrap_or_else(|| panic!("{kind}: no line for {vhost} with {fragment:?}"));
    let parsed = gw502_proxy::by_word(kind)
        .and_then(|p| p.parse_error_line(sample.as_bytes()))
        .unwrap_or_else(|| panic!("{kind}: unparsed {sample}"));
    (
        sample,
        Cause::join_set(parsed.cause),
        u32::from(parsed.status),
    )
}

/// The proxy's routes and targets, with health, from the captured API answers.
fn routes(kind: &str) -> (Vec<VirtualServer>, Vec<UpstreamTarget>) {
    if kind == "traefik" {
        traefik::api::parse(ROUTERS.as_bytes(), SERVICES.as_bytes()).unwrap()
    } else {
        let mut config = envoy::config::parse_config_dump(DUMP.as_bytes())
            .unwrap()
            .config;
        let hosts = envoy::admin::parse_clusters_json(CLUSTERS.as_bytes()).unwrap();
        envoy::admin::apply(&mut config.targets, &hosts);
        (config.servers, config.targets)
    }
}

/// `kind` serving `vhost` with its captured routes and health, its no-server
/// line as the signal, and app.service owning the port of the vhost's server
/// (running and listening when `app_up`, else stopped with no listener).
fn health_case(kind: &str, vhost: &'static str, fragment: &str, app_up: bool) -> Case {
    let (sample, cause, status) = captured(kind, vhost, fragment);
    let (servers, targets) = routes(kind);
    let port = targets
        .iter()
        .find(|t| t.server_names.iter().any(|n| n == vhost))
        .map_or(0, |t| t.port);
    let h = gw502_testkit::host("web1", vhost, Clock::fixed())
        .proxy(kind, &format!("{kind}.service"), "http://127.0.0.1:1")
        .edit(|s| {
            let p = &mut s.proxy_config.get_or_insert_default().proxies[0];
            p.servers = servers;
            p.targets = targets;
        })
        .signal(kind, &cause, status, sample, "");
    let h = if app_up {
        h.unit("app.service", "active", "running", "upstream")
            .tcp("127.0.0.1", port, "app.service")
    } else {
        h.unit("app.service", "inactive", "dead", "upstream")
            .no_listeners("app.service")
    };
    site(vhost).public("ok", status, kind).host(h)
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "health: traefik's API marks every server of the service DOWN, the app listens",
            health_case("traefik", "down.test", "\"RouterName\"", true),
            is(NoLiveUpstreams, 503, Hop::Proxy),
        ),
        near(
            "health: every traefik server DOWN because the app is stopped",
            NoLiveUpstreams,
            health_case("traefik", "down.test", "\"RouterName\"", false),
            is(ServiceDown, 503, Hop::Proxy),
        ),
        row(
            "health: envoy UH, its cluster's host /failed_active_hc, the app listens",
            health_case("envoy", "down.test", "503 UH", true),
            is(NoLiveUpstreams, 503, Hop::Proxy),
        ),
        near(
            "health: envoy UH, the active check fails because the app is stopped",
            NoLiveUpstreams,
            health_case("envoy", "down.test", "503 UH", false),
            is(ServiceDown, 503, Hop::Proxy),
        ),
        row(
            "health: envoy UH, outlier detection ejected every host",
            health_case("envoy", "ejected.test", "503 UH", true),
            is(NoLiveUpstreams, 503, Hop::Proxy),
        ),
    ]
}

fn verdict(name: &str) -> crate::Verdict {
    let row = rows().into_iter().find(|r| r.name == name).unwrap();
    attribute(&row.ev).into_iter().next().unwrap()
}

fn cites(v: &crate::Verdict, fragment: &str) -> bool {
    v.evidence.iter().any(|e| e.detail.contains(fragment))
}

#[test]
fn the_health_each_proxy_reports_is_cited() {
    let t =
        verdict("health: traefik's API marks every server of the service DOWN, the app listens");
    assert!(
        cites(
            &t,
            "traefik marks every server of down@file down: http://127.0.0.1:34649 DOWN"
        ),
        "{:?}",
        t.evidence
    );
    assert!(
        t.next_check.contains("health-check path"),
        "{}",
        t.next_check
    );
    let e = verdict("health: envoy UH, its cluster's host /failed_active_hc, the app listens");
    assert!(
        cites(
            &e,
            "envoy marks every server of down down: 127.0.0.1:49611 /failed_active_hc"
        ),
        "{:?}",
        e.evidence
    );
    // The app stopped: service_down, with the server the health view named.
    let s = verdict("health: every traefik server DOWN because the app is stopped");
    assert_eq!(s.cause, ServiceDown);
    assert!(cites(&s, "app.service inactive/dead"), "{:?}", s.evidence);
    assert!(cites(&s, "down@file down"), "{:?}", s.evidence);
    let o = verdict("health: envoy UH, outlier detection ejected every host");
    assert!(cites(&o, "/failed_outlier_check"), "{:?}", o.evidence);
    // The health view raises the symptom from inferred to confirmed.
    let plain = attribute(
        &site("down.test")
            .public("ok", 503, "envoy")
            .host(
                gw502_testkit::host("web1", "down.test", Clock::fixed())
                    .proxy("envoy", "envoy.service", "http://127.0.0.1:49611")
                    .signal("envoy", "no_live_upstreams", 503, "503 UH", "")
                    .unit("app.service", "active", "running", "upstream")
                    .tcp("127.0.0.1", 49611, "app.service"),
            )
            .0,
    );
    assert_eq!(plain[0].cause, NoLiveUpstreams);
    assert!(
        e.confidence > plain[0].confidence,
        "{} vs {}",
        e.confidence,
        plain[0].confidence
    );
}

#[test]
fn no_health_item_when_a_server_is_up_or_none_was_reported() {
    // A second server of down@file that Traefik reports UP: not every server is down.
    let (sample, cause, status) = captured("traefik", "down.test", "\"RouterName\"");
    let (servers, mut targets) = routes("traefik");
    let mut up = targets
        .iter()
        .find(|t| t.group == "down@file")
        .cloned()
        .unwrap();
    up.port += 1;
    up.address = format!("http://127.0.0.1:{}", up.port);
    up.health = "up".into();
    up.health_detail = "UP".into();
    targets.push(up);
    let mixed = site("down.test").public("ok", 503, "traefik").host(
        gw502_testkit::host("web1", "down.test", Clock::fixed())
            .proxy("traefik", "traefik.service", "http://127.0.0.1:1")
            .edit(|s| {
                let p = &mut s.proxy_config.get_or_insert_default().proxies[0];
                p.servers = servers;
                p.targets = targets;
            })
            .signal("traefik", &cause, status, sample, "")
            .unit("app.service", "active", "running", "upstream")
            .tcp("127.0.0.1", 34649, "app.service"),
    );
    let v = &attribute(&mixed.0)[0];
    assert!(!cites(v, "marks every server"), "{:?}", v.evidence);
    // Envoy's nxdomain cluster resolved to no host: no health to cite.
    let n = &attribute(&health_case("envoy", "nxdomain.test", "503 UH", true).0)[0];
    assert!(!cites(n, "marks every server"), "{:?}", n.evidence);
}
