//! Rows for the client and edge layers and for insufficient evidence.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const APP: &str = "http://127.0.0.1:3000/";
const CF_ERR: &[(&str, &str)] = &[
    ("server", "cloudflare"),
    ("cf-ray", "8f1e2d3c4b5a6978-FRA"),
    ("cf-error-type", "origin"),
    ("cf-error-origin", "1"),
];

fn three_vantages(bad_outcome: &str, bad_status: u32, fp: &str) -> Case {
    site("shop.example")
        .public_from("collector/c1", NOW - 10_000, "ok", 200, "app")
        .public_from("agent/web2", NOW - 9_000, "ok", 200, "app")
        .public_from("agent/lb3", NOW - 8_000, bad_outcome, bad_status, fp)
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "client: one vantage times out, two fine",
            three_vantages("timeout", 0, "").host(web("web1").access(200, "200", 300)),
            is(ClientPath, 0, Hop::Unknown),
        ),
        near(
            "client near-miss: one vantage 502 but origin logs refusals",
            ClientPath,
            three_vantages("ok", 502, "nginx").host(
                web("web1")
                    .unit("app.service", "failed", "failed", "upstream")
                    .ngx(
                        REFUSED,
                        "error",
                        "connect() failed (111: Connection refused) while connecting to upstream",
                        APP,
                    ),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        near(
            "client near-miss: two vantages, one bad, origin quiet",
            ClientPath,
            site("shop.example")
                .public_from("collector/c1", NOW - 10_000, "ok", 200, "app")
                .public_from("agent/lb3", NOW - 8_000, "timeout", 0, "")
                .host(web("web1")),
            is(InsufficientEvidence, 0, Hop::Unknown),
        ),
        row(
            "edge: cloudflare 502 of its own while origin answers",
            site("shop.example")
                .edge("cloudflare", 502, "cloudflare_unbranded", "", CF_ERR)
                .origin("web1", "ok", 200)
                .host(web("web1")),
            is(EdgeGenerated, 502, Hop::Edge),
        ),
        near(
            "edge near-miss: cloudflare 522, origin refused, nginx inactive",
            EdgeGenerated,
            site("shop.example")
                .edge("cloudflare", 522, "cloudflare_unbranded", "", CF_ERR)
                .origin("web1", "refused", 0)
                .host(web("web1").unit("nginx.service", "inactive", "dead", "proxy")),
            is(ProxyDown, 522, Hop::Edge),
        ),
        row(
            "edge: cloudflare 525 while origin TLS probe fine",
            site("shop.example")
                .edge("cloudflare", 525, "cloudflare_unbranded", "", CF_ERR)
                .origin("web1", "ok", 200)
                .host(web("web1")),
            is(EdgeTlsToOrigin, 525, Hop::Edge),
        ),
        near(
            "edge near-miss: cloudflare 526 with nginx failed on origin",
            EdgeTlsToOrigin,
            site("shop.example")
                .edge("cloudflare", 526, "cloudflare_unbranded", "", CF_ERR)
                .origin("web1", "refused", 0)
                .host(web("web1").unit("nginx.service", "failed", "failed", "proxy")),
            is(ProxyDown, 526, Hop::Edge),
        ),
        row(
            "edge: cloudflare 530 error 1016",
            site("shop.example")
                .edge("cloudflare", 530, "cloudflare_unbranded", "1016", CF_ERR)
                .host(web("web1")),
            is(EdgeOriginDns, 530, Hop::Edge),
        ),
        near(
            "edge near-miss: cloudflare 530 error 1033 (tunnel), origin fine",
            EdgeOriginDns,
            site("shop.example")
                .edge("cloudflare", 530, "cloudflare_unbranded", "1033", CF_ERR)
                .origin("web1", "ok", 200)
                .host(web("web1")),
            is(EdgeGenerated, 530, Hop::Edge),
        ),
        row(
            "unknown: nginx 502 and no agent serves the site",
            site("shop.example").public("ok", 502, "nginx"),
            is(InsufficientEvidence, 502, Hop::Proxy),
        ),
        row(
            "unknown: refusals but systemd and sockets unavailable",
            site("shop.example").public("ok", 502, "nginx").host(
                nginx("web1", "http://127.0.0.1:3000")
                    .ngx(
                        REFUSED,
                        "error",
                        "connect() failed (111: Connection refused) while connecting to upstream",
                        APP,
                    )
                    .edit(|s| {
                        s.systemd = Some(SystemdSection {
                            unavailable: "org.freedesktop.DBus.Error.AccessDenied".into(),
                            units: vec![],
                        });
                        s.sockets = Some(SocketsSection {
                            unavailable: "netlink: Operation not permitted".into(),
                            ..Default::default()
                        });
                    }),
            ),
            is(InsufficientEvidence, 502, Hop::Proxy),
        ),
        near(
            "unknown near-miss: same refusals with systemd showing app failed",
            InsufficientEvidence,
            site("shop.example").public("ok", 502, "nginx").host(
                web("web1")
                    .unit("app.service", "failed", "failed", "upstream")
                    .ngx(
                        REFUSED,
                        "error",
                        "connect() failed (111: Connection refused) while connecting to upstream",
                        APP,
                    ),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        near(
            "unknown near-miss: probes blocked by the ssrf guard say nothing",
            InsufficientEvidence,
            site("shop.example")
                .public("blocked", 0, "")
                .host(web("web1")),
            None,
        ),
    ]
}

/// One origin of three down behind a round-robin edge: one public probe in
/// three fails, the latest happens to be good. The site is failing; a
/// recovery (failures, then only good answers) is not.
#[test]
fn a_partial_failure_rate_is_a_failure_a_recovery_is_not() {
    let probes = |pattern: &[u32]| {
        let mut case = site("shop.example").host(web("web1"));
        for (i, status) in pattern.iter().enumerate() {
            let at = NOW - 60_000 + 10_000 * i64::try_from(i).unwrap();
            case = case.public_from(
                "collector/c1",
                at,
                "ok",
                *status,
                if *status == 502 { "nginx" } else { "app" },
            );
        }
        case.0
    };
    let v = attribute(&probes(&[200, 200, 502, 200, 200, 502, 200]));
    assert_eq!(v.first().map(|v| v.status), Some(502), "{v:#?}");
    assert!(attribute(&probes(&[502, 502, 502, 502, 200, 200])).is_empty());
    assert!(attribute(&probes(&[200, 200, 200, 502, 200, 200])).is_empty());
    // An outage that ended is a recovery, whatever good answers came before it.
    assert!(attribute(&probes(&[200, 502, 502, 200])).is_empty());
    assert!(!attribute(&probes(&[502, 200, 502, 200])).is_empty());
}

/// One public failure and then good answers is a partial failure while the
/// collector's own probe of one of the site's origins still fails after it;
/// when every origin answers, it is a recovery.
#[test]
fn a_failing_origin_behind_good_answers_keeps_a_partial_failure() {
    let case = |origin_status: u32| {
        let mut case = site("shop.example")
            .origins(&["web1", "web2"])
            .host(web("web1"))
            .host(web("web2"));
        for (i, status) in [200, 200, 200, 502, 200, 200].iter().enumerate() {
            let at = NOW - 60_000 + 10_000 * i64::try_from(i).unwrap();
            let fp = if *status == 502 { "nginx" } else { "app" };
            case = case.public_from("collector/c1", at, "ok", *status, fp);
        }
        // The origin probes come after the public failure (NOW - 30 s).
        case.origin("web1", "ok", origin_status)
            .origin("web2", "ok", 200)
            .0
    };
    let v = attribute(&case(502));
    assert_eq!(v.first().map(|v| v.status), Some(502), "{v:#?}");
    assert!(attribute(&case(200)).is_empty());
}

/// A site configured by address (`url = "http://10.77.0.11/"`, `name =
/// "shop.example"`) matches its vhost and log lines by its name.
#[test]
fn a_site_configured_by_address_matches_by_name() {
    let line = "connect() failed (111: Connection refused) while connecting to upstream";
    let mut case = site("shop.example").public("ok", 502, "nginx").host(
        web("web1")
            .addr("10.77.0.11")
            .idle_proxy("apache", "apache2.service", false)
            .unit("app.service", "inactive", "dead", "upstream")
            .ngx(
                "service_down|wrong_port|not_listening",
                "error",
                line,
                "http://127.0.0.1:3000/",
            ),
    );
    // A second host that does not serve the site, so serving is decided by name.
    case = case.host(host("db1").addr("10.77.0.20"));
    case.0.site.url = "http://10.77.0.11/".into();
    let v = attribute(&case.0);
    assert_eq!(
        v.first().map(|v| (v.cause, v.host.as_deref())),
        Some((Cause::ServiceDown, Some("web1"))),
        "{v:#?}"
    );
}

/// A site configured by address with no host name (`url = "http://10.77.0.11/"`,
/// `name = "site3"`) is answered by the proxy's default server on the port: that
/// server's log lines are the site's, another vhost's are not.
#[test]
fn a_site_by_address_owns_the_default_servers_log_lines() {
    let line = "connect() failed (111: Connection refused) while connecting to upstream";
    let case = |default: &str| {
        let mut h = web("web1")
            .addr("10.77.0.11")
            .unit("app.service", "inactive", "dead", "upstream")
            .ngx(
                "service_down|wrong_port|not_listening",
                "error",
                line,
                "http://127.0.0.1:3000/",
            );
        let nginx = &mut h.report.proxy_config.as_mut().unwrap().proxies[0];
        nginx.servers.insert(
            0,
            gw502_proto::v1::VirtualServer {
                names: vec!["blog.example".into()],
                listens: vec!["80".into()],
                ..Default::default()
            },
        );
        for s in &mut nginx.servers {
            if s.names.iter().any(|n| n == default) {
                s.listens[0] = "80 default_server".into();
            }
        }
        let mut case = site("site3")
            .public("ok", 502, "nginx")
            .origins(&["web1"])
            .host(h);
        case.0.site.url = "http://10.77.0.11/".into();
        attribute(&case.0)
    };
    let cites = |v: &[super::super::Verdict]| format!("{v:?}").contains("Connection refused");
    let ours = case("shop.example");
    assert_eq!(
        ours.first().map(|v| v.cause),
        Some(Cause::ServiceDown),
        "{ours:#?}"
    );
    assert!(
        cites(&ours),
        "the default server's lines are the site's: {ours:#?}"
    );
    let other = case("blog.example");
    assert!(!cites(&other), "another vhost's lines are not: {other:#?}");
}

/// Behind a round robin, a healthy origin whose own probe of its upstream
/// fails (a probe in the wrong protocol, a spare backend) is not blamed while
/// it answers for the site; the same probe on an origin that does not answer
/// still counts.
#[test]
fn an_origin_that_answers_is_not_blamed_for_its_own_failing_probe() {
    let refused = "connect() failed (111: Connection refused) while connecting to upstream";
    let case = |web2_answers: u32| {
        site("shop.example")
            .public("ok", 502, "nginx")
            .origins(&["web1", "web2"])
            .origin("web1", "ok", 502)
            .origin("web2", "ok", web2_answers)
            .host(
                web("web1")
                    .unit("app.service", "inactive", "dead", "upstream")
                    .ngx(REFUSED, "error", refused, "http://127.0.0.1:3000/"),
            )
            .host(web("web2").probe(
                "127.0.0.1:3000",
                "reset",
                "response",
                0,
                "Connection reset by peer (os error 104)",
            ))
            .0
    };
    let hosts = |v: &[super::super::Verdict]| {
        v.iter()
            .map(|v| (v.host.clone().unwrap_or_default(), v.cause))
            .collect::<Vec<_>>()
    };
    let healthy = attribute(&case(200));
    assert_eq!(
        hosts(&healthy),
        [("web1".to_string(), ServiceDown)],
        "{healthy:#?}"
    );
    let failing = attribute(&case(502));
    assert!(
        hosts(&failing).iter().any(|(h, _)| h == "web2"),
        "an origin that fails too keeps its verdict: {failing:#?}"
    );
}

/// An origin that fails only some requests (its proxy's kept-alive upstream
/// connections still work while new ones fail the handshake) answers for the
/// site only by luck when its latest probe is good: its failing direct probe
/// stays evidence. One that answers every probe is still not blamed for it.
#[test]
fn an_origin_that_fails_some_requests_keeps_its_failing_probe() {
    let case = |answers: &[u32]| {
        let mut s = site("shop.example").public("ok", 500, "apache");
        let url = s.0.site.url.clone();
        for (at, status) in (NOW - 9_000..).step_by(1_000).zip(answers) {
            s = s.obs(obs(
                &url,
                "collector/c1",
                "origin/web1",
                at,
                "ok",
                *status,
                "",
            ));
        }
        s.host(
            nginx("web1", "https://127.0.0.1:3443")
                .unit("app.service", "active", "running", "upstream")
                .tcp("127.0.0.1", 3443, "app.service")
                .probe(
                    "https://127.0.0.1:3443",
                    "tls_error",
                    "tls",
                    0,
                    "certificate_expired: certificate expired",
                ),
        )
        .0
    };
    let causes = |answers: &[u32]| -> Vec<Cause> {
        attribute(&case(answers)).iter().map(|v| v.cause).collect()
    };
    assert_eq!(causes(&[500, 200, 500, 200]), [TlsCertificateError]);
    let answered = causes(&[200, 200, 200, 200]);
    assert!(!answered.contains(&TlsCertificateError), "{answered:?}");
}

/// Round-robin over three origins with one origin's proxy stopped: the public probes
/// of the last seconds all happened to reach the other two, while the edge in front
/// (the host the public probes connect to, named by no config of the site) probes the
/// stopped origin refused on every report and logs its own 503 to the visitors it
/// sent there. The site fails; the edge answered them. An edge probe that fails an
/// address no serving host owns says nothing about this site, and neither does a
/// host the public probes never reached. Before the edge logged any answer through
/// those origins (its agent just started), its proxy's own answer to a refused
/// connection is the status: HAProxy's 503, nginx's 502.
#[test]
fn an_edge_in_front_that_sees_an_origin_refuse_fails_the_site() {
    const EDGE: &str = "10.77.0.14";
    let sc = "10.77.0.1:47594 [02/Dec/2026:15:08:27.844] edge origins/origin0 43/0/-1/-1/3047 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET / HTTP/1.1\"";
    let case_of = |kind: &str, logged: bool, edge_addr: &str, refused: &str| {
        let mut edge = host("lb1")
            .addr(&format!("{edge_addr}/24"))
            .proxy(kind, &format!("{kind}.service"), "http://10.77.0.11:80")
            .probe(
                &format!("{refused}:80"),
                "refused",
                "connect",
                0,
                "Connection refused",
            );
        if logged {
            edge = edge.signal("haproxy", REFUSED, 503, sc, "origins");
        }
        let edge = edge.edit(|r| {
            // An edge's config names no site: a frontend and a backend of servers.
            let cfg = &mut r.proxy_config.as_mut().unwrap().proxies[0];
            cfg.servers[0].names.clear();
            for t in &mut cfg.targets {
                t.server_names.clear();
                t.group = "origins".into();
            }
            let p = &mut r.probes.as_mut().unwrap().probes[0];
            p.target.as_mut().unwrap().group = "origins".into();
            p.peer = format!("{refused}:80");
            for s in r.proxy_log.iter_mut().flat_map(|l| &mut l.signals) {
                s.server = "edge".into();
            }
        });
        let mut case = site("shop.example")
            .origins(&["web1", "web2", "web3"])
            .host(web("web1").addr("10.77.0.11/24").unit(
                "nginx.service",
                "inactive",
                "dead",
                "proxy",
            ))
            .host(web("web2").addr("10.77.0.12/24"))
            .host(web("web3").addr("10.77.0.13/24"))
            .host(edge);
        for i in 0..6 {
            case = case.public_from("collector/c1", NOW - 6_000 + 1_000 * i, "ok", 200, "app");
        }
        for o in &mut case.0.edge {
            o.peer = format!("{EDGE}:80");
        }
        case.0.site.url = format!("http://{EDGE}/");
        attribute(&case.0)
    };
    let case = |edge_addr: &str, refused: &str| case_of("haproxy", true, edge_addr, refused);
    let words = |v: &[super::super::Verdict]| {
        v.iter()
            .map(|v| (v.cause, v.host.clone(), v.status, v.emitted_by))
            .collect::<Vec<_>>()
    };
    let web1 = |status| [(ProxyDown, Some("web1".to_string()), status, Hop::Edge)];
    let v = case(EDGE, "10.77.0.11");
    assert_eq!(words(&v), web1(503), "{v:#?}");
    let unlogged = case_of("haproxy", false, EDGE, "10.77.0.11");
    assert_eq!(words(&unlogged), web1(503), "{unlogged:#?}");
    let nginx = case_of("nginx", false, EDGE, "10.77.0.11");
    assert_eq!(words(&nginx), web1(502), "{nginx:#?}");
    assert!(
        case(EDGE, "10.77.0.99").is_empty(),
        "an origin of another site"
    );
    assert!(
        case("10.77.0.15", "10.77.0.11").is_empty(),
        "a host the public probes never reached"
    );
}
