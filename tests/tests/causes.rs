//! Every cause of TAXONOMY §2 produced from evidence through the real ingest
//! path: agents send `HostReport`s over mTLS to a collector started in the
//! test, edge-side evidence arrives as the agents' cross-probes or from the
//! collector's own edge prober probing real HTTP servers on loopback, and the
//! verdicts are read back through the Query service. Each incident must open
//! with the expected words and evidence, then resolve once the evidence is
//! healthy again. Replayed reports must never open one.

use std::time::Duration;

use gw502_proto::v1::{GetIncidentRequest, Incident, ListSitesRequest};
use gw502_tests::causes::host::{Host, host, nginx, php, web};
use gw502_tests::causes::stub::{self, Stub};
use gw502_tests::causes::{Harness, WAIT, fast_config, site, words};
use gw502_vocab::Cause;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";
const SLOW_LINE: &str =
    "upstream timed out (110: Connection timed out) while reading response header from upstream";
const APP: &str = "http://127.0.0.1:3000/";
const FPM: &str = "fastcgi://unix:/run/php/php8.2-fpm.sock:";
const EMERG: &str = "nginx: [emerg] host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12\nnginx: configuration file /etc/nginx/nginx.conf test failed";

/// (site, cause, (layer, cause, status, emitted_by), evidence sources).
type Expect<'a> = (
    String,
    &'a str,
    (&'a str, &'a str, u32, &'a str),
    &'a [&'a str],
);

/// One cause: the failing reports of its hosts and what the incident must say.
struct Case {
    cause: &'static str,
    layer: &'static str,
    status: u32,
    emitted_by: &'static str,
    /// Evidence sources the incident must cite.
    sources: &'static [&'static str],
    /// The failing reports, from (host id, site).
    fail: fn(&str, &str) -> Vec<Host>,
}

impl Case {
    fn site(&self) -> String {
        format!("{}.example", self.cause.replace('_', "-"))
    }
    fn host(&self) -> String {
        format!("h-{}", self.cause.replace('_', "-"))
    }
}

/// The web host after the fix: app up on 3000, the public view fine.
fn healthy(id: &str, site: &str) -> Host {
    web(id, site)
        .access(200, "200", 100)
        .probe("127.0.0.1:3000", "ok", "response", 200, "")
        .sees("ok", 200, "app")
}

fn case(
    cause: &'static str,
    layer: &'static str,
    status: u32,
    emitted_by: &'static str,
    sources: &'static [&'static str],
    fail: fn(&str, &str) -> Vec<Host>,
) -> Case {
    Case {
        cause,
        layer,
        status,
        emitted_by,
        sources,
        fail,
    }
}

/// Causes produced from agent reports and agent cross-probes alone.
fn reported_cases() -> Vec<Case> {
    vec![
        case("proxy_down", "proxy", 0, "unknown", &["systemd"], |h, s| {
            vec![
                web(h, s)
                    .unit("nginx.service", "inactive", "dead", "proxy")
                    .event("nginx.service", "stop", 80_000, "Stopped nginx.service")
                    .sees("refused", 0, ""),
            ]
        }),
        case(
            "proxy_config_invalid",
            "proxy",
            0,
            "unknown",
            &["proxy_config"],
            |h, s| {
                vec![web(h, s).unit("nginx.service", "failed", "failed", "proxy").config_test(false, EMERG)
                .journal("nginx.service", 3, "2024/05/01 09:58:00 [emerg] 1234#1234: host not found in upstream \"app.internal:8080\" in /etc/nginx/sites-enabled/shop:12")
                .sees("refused", 0, "")]
            },
        ),
        case(
            "no_live_upstreams",
            "proxy",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![
                    web(h, s)
                        .ngx(
                            "no_live_upstreams",
                            "error",
                            "no live upstreams while connecting to upstream",
                            "http://backend/",
                        )
                        .access(502, "-", 80)
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "wrong_port",
            "handoff",
            502,
            "proxy",
            &["proxy_log", "sockets"],
            |h, s| {
                vec![
                    nginx(h, s, "http://127.0.0.1:3001")
                        .unit("app.service", "active", "running", "upstream")
                        .tcp("127.0.0.1", 3000, "app.service")
                        .ngx(REFUSED, "error", REFUSED_LINE, "http://127.0.0.1:3001/")
                        .probe("127.0.0.1:3001", "refused", "connect", 0, "")
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "bind_mismatch",
            "handoff",
            502,
            "proxy",
            &["proxy_log", "sockets"],
            |h, s| {
                vec![
                    nginx(h, s, "http://127.0.0.1:3000")
                        .unit("app.service", "active", "running", "upstream")
                        .tcp("::1", 3000, "app.service")
                        .ngx(REFUSED, "error", REFUSED_LINE, APP)
                        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "wrong_socket_path",
            "handoff",
            502,
            "proxy",
            &["proxy_log", "sockets"],
            |h, s| {
                vec![nginx(h, s, "fastcgi://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream")
                .unix("/run/php/php-fpm-www.sock", "php8.2-fpm.service", 0o660, 33, 33)
                .ngx("wrong_socket_path|service_down", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream", FPM)
                .sees("ok", 502, "nginx")]
            },
        ),
        case(
            "socket_permission_denied",
            "handoff",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![nginx(h, s, "fastcgi://unix:/run/php/php8.2-fpm.sock").unit("php8.2-fpm.service", "active", "running", "upstream")
                .unix("/run/php/php8.2-fpm.sock", "php8.2-fpm.service", 0o600, 0, 0)
                .ngx("socket_permission_denied", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream", FPM)
                .probe("unix:/run/php/php8.2-fpm.sock", "permission_denied", "connect", 0, "").sees("ok", 502, "nginx")]
            },
        ),
        case(
            "protocol_mismatch",
            "handoff",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![nginx(h, s, "fastcgi://127.0.0.1:3000").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .ngx("protocol_mismatch", "error", "upstream sent unsupported FastCGI protocol version: 72 while reading response header from upstream", "fastcgi://127.0.0.1:3000")
                .probe("fastcgi://127.0.0.1:3000", "protocol_mismatch", "response", 0, "http_peer: HTTP/1.1 400 Bad Request").sees("ok", 502, "nginx")]
            },
        ),
        case(
            "tls_mismatch",
            "handoff",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![nginx(h, s, "https://127.0.0.1:3000").unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3000, "app.service")
                .ngx("tls_mismatch", "error", "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", "https://127.0.0.1:3000/")
                .probe("https://127.0.0.1:3000", "tls_error", "tls", 0, "plaintext_peer: HTTP/1.1 400 Bad Request").sees("ok", 502, "nginx")]
            },
        ),
        case(
            "tls_certificate_error",
            "handoff",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![nginx(h, s, "https://api.internal:443").dns("api.internal", &["10.77.0.20"], "")
                .ngx("tls_certificate_error", "error", "upstream SSL certificate does not match \"api.internal\" while SSL handshaking to upstream", "https://10.77.0.20:443/")
                .probe("https://api.internal:443", "tls_error", "tls", 0, "certificate_name_mismatch: presented for other.internal").sees("ok", 502, "nginx")]
            },
        ),
        case(
            "dns_failure",
            "handoff",
            502,
            "proxy",
            &["proxy_log", "dns"],
            |h, s| {
                vec![
                    nginx(h, s, "http://app.internal:8080")
                        .dns("app.internal", &[], "NXDOMAIN")
                        .ngx(
                            "dns_failure",
                            "error",
                            "app.internal could not be resolved (3: Host not found)",
                            "",
                        )
                        .probe(
                            "app.internal:8080",
                            "dns_error",
                            "connect",
                            0,
                            "failed to lookup address information: Name or service not known",
                        )
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "service_down",
            "upstream",
            502,
            "proxy",
            &["proxy_log", "systemd", "sockets"],
            |h, s| {
                vec![
                    web(h, s)
                        .unit("app.service", "inactive", "dead", "upstream")
                        .event("app.service", "stop", 90_000, "Stopped app.service")
                        .ngx(REFUSED, "error", REFUSED_LINE, APP)
                        .access(502, "502", 40)
                        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "crash_loop",
            "upstream",
            502,
            "proxy",
            &["systemd"],
            |h, s| {
                vec![
                    web(h, s)
                        .unit("app.service", "activating", "auto-restart", "upstream")
                        .restarts("app.service", 7)
                        .event(
                            "app.service",
                            "exit",
                            60_000,
                            "code=exited, status=1/FAILURE",
                        )
                        .event(
                            "app.service",
                            "restart",
                            55_000,
                            "Scheduled restart job, restart counter is at 6",
                        )
                        .event(
                            "app.service",
                            "exit",
                            40_000,
                            "code=exited, status=1/FAILURE",
                        )
                        .ngx(REFUSED, "error", REFUSED_LINE, APP)
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "not_listening",
            "upstream",
            502,
            "proxy",
            &["proxy_log", "sockets"],
            |h, s| {
                vec![
                    web(h, s)
                        .no_listeners("app.service")
                        .ngx(REFUSED, "error", REFUSED_LINE, APP)
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "saturated",
            "upstream",
            504,
            "proxy",
            &["journal"],
            |h, s| {
                vec![php(h, s).journal("php8.2-fpm.service", 4, "WARNING: [pool www] server reached pm.max_children setting (5), consider raising it")
                .ngx("timeout", "error", SLOW_LINE, FPM).access(504, "504", 30).sees("ok", 504, "nginx")]
            },
        ),
        case(
            "timeout",
            "upstream",
            504,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![
                    web(h, s)
                        .ngx("timeout", "error", SLOW_LINE, APP)
                        .access(504, "504", 7)
                        .probe("127.0.0.1:3000", "timeout", "response", 0, "")
                        .sees("ok", 504, "nginx"),
                ]
            },
        ),
        case(
            "upstream_returned_error",
            "upstream",
            503,
            "upstream",
            &["access_log"],
            |h, s| {
                vec![
                    web(h, s)
                        .access(503, "503", 25)
                        .probe("127.0.0.1:3000", "ok", "response", 503, "")
                        .sees("ok", 503, "app"),
                ]
            },
        ),
        case(
            "header_too_big",
            "response",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![web(h, s).ngx("header_too_big", "error", "upstream sent too big header while reading response header from upstream", APP)
                .probe("127.0.0.1:3000", "header_too_big", "response", 0, "").edit(|r| {
                    if let Some(p) = r.probes.as_mut().and_then(|p| p.probes.first_mut()) {
                        p.header_bytes = 65_600;
                    }
                }).sees("ok", 502, "nginx")]
            },
        ),
        case(
            "invalid_header",
            "response",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![web(h, s).ngx("invalid_header", "error", "upstream sent invalid header: \"X-Trace\\x00: ab\" while reading response header from upstream", APP).sees("ok", 502, "nginx")]
            },
        ),
        case(
            "premature_close",
            "response",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![web(h, s).ngx("premature_close", "error", "upstream prematurely closed connection while reading response header from upstream", APP)
                .probe("127.0.0.1:3000", "premature_close", "response", 0, "").sees("ok", 502, "nginx")]
            },
        ),
        case(
            "connection_reset",
            "response",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                let origin = format!("origin/{h}");
                vec![web(h, s).ngx("connection_reset", "error", "recv() failed (104: Connection reset by peer) while reading response header from upstream", APP)
                .sees("ok", 502, "nginx").cross(&origin, "ok", 200, "")]
            },
        ),
        case(
            "invalid_body",
            "response",
            502,
            "proxy",
            &["proxy_log"],
            |h, s| {
                vec![
                    web(h, s)
                        .ngx(
                            "invalid_body",
                            "error",
                            "upstream sent invalid chunked response while reading upstream",
                            APP,
                        )
                        .sees("ok", 502, "nginx"),
                ]
            },
        ),
        case(
            "dependency_failure",
            "dependency",
            500,
            "upstream",
            &["journal"],
            |h, s| {
                vec![web(h, s).access(500, "500", 30)
                .journal("app.service", 3, "psycopg2.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"127.0.0.1\" and accepting TCP/IP connections on port 5432?")
                .sees("ok", 500, "app")]
            },
        ),
    ]
}

/// A cause produced with the collector's own edge prober against stubs.
struct EdgeCase {
    cause: &'static str,
    layer: &'static str,
    status: u32,
    emitted_by: &'static str,
    sources: &'static [&'static str],
    site: String,
    host: Option<Host>,
    stubs: Vec<Stub>,
}

async fn edge_cases() -> anyhow::Result<Vec<EdgeCase>> {
    let mut out = Vec::new();
    // The edge made the error while the origin (127.0.0.2) answers 200.
    for (cause, status, reason, code) in [
        ("edge_generated", 502u16, "Bad Gateway", None),
        ("edge_tls_to_origin", 525, "SSL Handshake Failed", None),
        ("edge_origin_dns", 530, "Origin DNS Error", Some("1016")),
    ] {
        let (front, origin) =
            Stub::edge_and_origin(stub::cloudflare(status, reason, code), stub::ok_page()).await?;
        let site = format!("{}.example", cause.replace('_', "-"));
        let id = format!("h-{}", cause.replace('_', "-"));
        out.push(EdgeCase {
            cause,
            layer: "edge",
            status: u32::from(status),
            emitted_by: "edge",
            sources: &["edge_probe"],
            host: Some(web(&id, &site).addr("127.0.0.2").access(200, "200", 50)),
            site,
            stubs: vec![front, origin],
        });
    }
    // HAProxy in front answers 503 because nginx on the origin is stopped:
    // the direct probe of the origin (127.0.0.3, nothing listening) is refused.
    let front = Stub::start([127, 0, 0, 1].into(), 0, stub::HAPROXY_503.to_vec()).await?;
    let site = "edge-proxy-down.example".to_string();
    out.push(EdgeCase {
        cause: "proxy_down",
        layer: "proxy",
        status: 503,
        emitted_by: "edge",
        sources: &["systemd", "edge_probe"],
        host: Some(
            web("h-edge-proxy-down", &site)
                .addr("127.0.0.3")
                .unit("nginx.service", "inactive", "dead", "proxy")
                .event("nginx.service", "stop", 70_000, "Stopped nginx.service"),
        ),
        site,
        stubs: vec![front],
    });
    // nginx's 502 page and no agent serves the site.
    let front = Stub::start([127, 0, 0, 1].into(), 0, stub::NGINX_502.to_vec()).await?;
    out.push(EdgeCase {
        cause: "insufficient_evidence",
        layer: "unknown",
        status: 502,
        emitted_by: "proxy",
        sources: &["edge_probe"],
        host: None,
        site: "insufficient-evidence.example".into(),
        stubs: vec![front],
    });
    Ok(out)
}

fn check(
    failures: &mut Vec<String>,
    what: &str,
    incident: &Incident,
    expect: (&str, &str, u32, &str),
    sources: &[&str],
) {
    let Some(v) = incident.verdict.as_ref() else {
        failures.push(format!("{what}: incident without verdict"));
        return;
    };
    let got = (
        v.layer.as_str(),
        v.cause.as_str(),
        v.status,
        v.emitted_by.as_str(),
    );
    if got != expect {
        failures.push(format!("{what}: expected {expect:?}, got {got:?}"));
    }
    let cited: Vec<&str> = v.evidence.iter().map(|e| e.source.as_str()).collect();
    if cited.is_empty() || sources.iter().any(|s| !cited.contains(s)) {
        failures.push(format!("{what}: evidence {cited:?} lacks {sources:?}"));
    }
    if v.next_check.is_empty() {
        failures.push(format!("{what}: empty next_check"));
    }
}

/// Polls until `site` has exactly one open incident and it has `cause`.
/// The single open incident of `site` with `cause`, once its verdict cites every one of
/// `sources` (an incident can open on the host's report before the next edge probe
/// adds its evidence); at the deadline, the incident as it is, for `check` to judge.
async fn wait_for(
    h: &mut Harness,
    site: &str,
    cause: &str,
    sources: &[&str],
) -> anyhow::Result<Incident> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = h.open(site).await?;
        let late = tokio::time::Instant::now() > deadline;
        if let [only] = open.as_slice()
            && let Some(v) = only.verdict.as_ref().filter(|v| v.cause == cause)
            && (late
                || sources
                    .iter()
                    .all(|s| v.evidence.iter().any(|e| e.source == *s)))
        {
            return Ok(only.clone());
        }
        if late {
            let seen: Vec<String> = h
                .incidents(site)
                .await?
                .iter()
                .map(|i| format!("{} {}", i.state, words(i)))
                .collect();
            anyhow::bail!("{site}: no single open {cause} incident; incidents: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn resolved(h: &mut Harness, site: &str, id: u64) -> anyhow::Result<bool> {
    Ok(h.incidents(site)
        .await?
        .iter()
        .any(|i| i.id == id && i.state == "resolved" && i.resolved_at_ms > 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cause_opens_and_resolves_through_ingest() -> anyhow::Result<()> {
    let reported = reported_cases();
    let edge = edge_cases().await?;
    // firewall_blocked needs the app host among the site's hosts: a configured site
    // whose public URL shows nginx's 504; the hosts' 10.77 addresses are outside
    // the probe allowance, so the prober never sends anything there.
    let firewall = Stub::start([127, 0, 0, 1].into(), 0, stub::raw(504, "Gateway Time-out", &[("server", "nginx/1.22.1"), ("content-type", "text/html")], "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n")).await?;
    // client_path: the collector and one agent see 200, one agent times out.
    let client = Stub::start([127, 0, 0, 1].into(), 0, stub::ok_page()).await?;
    let mut sites: Vec<_> = edge
        .iter()
        .map(|e| {
            let hosts: Vec<&str> = e.host.iter().map(|h| h.report.host_id.as_str()).collect();
            site(&e.site, &e.stubs[0].url(), &hosts)
        })
        .collect();
    sites.push(site(
        "firewall-blocked.example",
        &firewall.url(),
        &["h-fw-web", "h-fw-app"],
    ));
    sites.push(site("client-path.example", &client.url(), &["h-client"]));
    let mut h = Harness::start(|fleet| fast_config(fleet, "causes", sites)).await?;

    for c in &reported {
        for report in (c.fail)(&c.host(), &c.site()) {
            h.send(report).await?;
        }
    }
    for e in &edge {
        if let Some(host) = &e.host {
            h.send(host.clone()).await?;
        }
    }
    let fw = "firewall-blocked.example";
    h.send(
        nginx("h-fw-web", fw, "http://10.77.0.12:8080")
            .addr("10.77.0.11")
            .ngx(
                "firewall_blocked",
                "error",
                "upstream timed out (110: Connection timed out) while connecting to upstream",
                "http://10.77.0.12:8080/",
            )
            .access(504, "504", 9)
            .probe("10.77.0.12:8080", "timeout", "connect", 0, ""),
    )
    .await?;
    h.send(
        host("h-fw-app", fw)
            .addr("10.77.0.12")
            .unit("app.service", "active", "running", "upstream")
            .tcp("0.0.0.0", 8080, "app.service"),
    )
    .await?;
    let cp = "client-path.example";
    h.send(healthy("h-client", cp)).await?;
    // Only once the collector's own probe saw 200 does the far vantage report its timeouts.
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.hits() == 0
        || !h
            .operator
            .list_sites(ListSitesRequest {})
            .await?
            .into_inner()
            .sites
            .iter()
            .any(|s| s.name == cp && s.last_probe.is_some())
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "client-path site never probed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.send(host("h-client-far", cp).sees("timeout", 0, ""))
        .await?;

    // Every incident opens with its words and evidence.
    let mut failures = Vec::new();
    let mut opened: Vec<(String, u64)> = Vec::new();
    let mut expect_all: Vec<Expect<'_>> = reported
        .iter()
        .map(|c| {
            (
                c.site(),
                c.cause,
                (c.layer, c.cause, c.status, c.emitted_by),
                c.sources,
            )
        })
        .collect();
    for e in &edge {
        expect_all.push((
            e.site.clone(),
            e.cause,
            (e.layer, e.cause, e.status, e.emitted_by),
            e.sources,
        ));
    }
    expect_all.push((
        fw.into(),
        "firewall_blocked",
        ("handoff", "firewall_blocked", 504, "proxy"),
        &["direct_probe", "sockets"],
    ));
    expect_all.push((
        cp.into(),
        "client_path",
        ("client", "client_path", 0, "unknown"),
        &["edge_probe"],
    ));
    for (site, cause, expect, sources) in &expect_all {
        match wait_for(&mut h, site, cause, sources).await {
            Ok(incident) => {
                check(&mut failures, site, &incident, *expect, sources);
                let detail = h
                    .operator
                    .get_incident(GetIncidentRequest { id: incident.id })
                    .await?
                    .into_inner();
                if detail.incident.as_ref().map(|i| i.id) != Some(incident.id)
                    || detail.history.is_empty()
                {
                    failures.push(format!(
                        "{site}: GetIncident lacks the incident or its history"
                    ));
                }
                opened.push((site.clone(), incident.id));
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let causes: std::collections::BTreeSet<&str> = expect_all.iter().map(|e| e.1).collect();
    let vocabulary: std::collections::BTreeSet<&str> =
        Cause::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        causes, vocabulary,
        "every cause of the vocabulary, insufficient_evidence included"
    );
    assert!(
        failures.is_empty(),
        "{} of {} causes failed:\n{}",
        failures.len(),
        expect_all.len(),
        failures.join("\n")
    );

    // Healthy evidence resolves every one of them.
    for e in &edge {
        e.stubs[0].set(stub::ok_page());
    }
    firewall.set(stub::ok_page());
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pending = opened.clone();
    while !pending.is_empty() {
        for c in &reported {
            h.send(healthy(&c.host(), &c.site())).await?;
        }
        for e in &edge {
            if let Some(host) = &e.host {
                h.send(healthy(&host.report.host_id, &e.site).addr(&host.report.addresses[0]))
                    .await?;
            }
        }
        h.send(
            nginx("h-fw-web", fw, "http://10.77.0.12:8080")
                .addr("10.77.0.11")
                .access(200, "200", 50)
                .probe("10.77.0.12:8080", "ok", "response", 200, "")
                .sees("ok", 200, "app"),
        )
        .await?;
        h.send(host("h-client-far", cp).sees("ok", 200, "app"))
            .await?;
        let mut still = Vec::new();
        for (site, id) in pending {
            if !resolved(&mut h, &site, id).await? {
                still.push((site, id));
            }
        }
        pending = still;
        if tokio::time::Instant::now() > deadline {
            let mut seen = Vec::new();
            for (site, _) in &pending {
                seen.push(format!(
                    "{site}: {:?}",
                    h.incidents(site)
                        .await?
                        .iter()
                        .map(|i| format!("{} {}", i.state, words(i)))
                        .collect::<Vec<_>>()
                ));
            }
            panic!("never resolved:\n{}", seen.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    h.running.stop().await
}

#[tokio::test]
async fn replayed_reports_never_open_incidents() -> anyhow::Result<()> {
    let mut h = Harness::start(|fleet| fast_config(fleet, "replayed", Vec::new())).await?;
    let site = "replayed.example";
    // What the agent spooled while the collector was away: the app was down.
    let spooled = web("h-replay", site)
        .unit("app.service", "inactive", "dead", "upstream")
        .ngx(REFUSED, "error", REFUSED_LINE, APP)
        .access(502, "502", 40)
        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
        .sees("ok", 502, "nginx");
    h.send_report(spooled.clone(), true).await?;
    // A live failing report on another site proves evaluation runs meanwhile.
    let live = "replayed-live.example";
    h.send(
        web("h-live", live)
            .unit("app.service", "inactive", "dead", "upstream")
            .ngx(REFUSED, "error", REFUSED_LINE, APP)
            .sees("ok", 502, "nginx"),
    )
    .await?;
    wait_for(&mut h, live, "service_down", &[]).await?;
    // Fresh live evidence keeps being evaluated (the live incident counts bad
    // observations) while the replayed history keeps arriving.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        h.send_report(spooled.clone(), true).await?;
        h.send(
            web("h-live", live)
                .unit("app.service", "inactive", "dead", "upstream")
                .sees("ok", 502, "nginx"),
        )
        .await?;
        let counted = wait_for(&mut h, live, "service_down", &[])
            .await?
            .bad_observations;
        if counted >= 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "live evidence never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let incidents = h.incidents(site).await?;
    assert!(
        incidents.is_empty(),
        "replayed history opened {:?}",
        incidents.iter().map(words).collect::<Vec<_>>()
    );
    h.running.stop().await
}
