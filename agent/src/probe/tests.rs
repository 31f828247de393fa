//! `ProbeSource` and `CrossProbeSource` over a scope, against real servers.

use std::path::PathBuf;

use gw502_proto::v1::{ProxyConfig, UpstreamTarget};

use gw502_probe::FetchRequest;
use gw502_probe::testing::{Behaviour, serve};

use crate::probe::{CrossProbeSite, CrossProbeSource, ProbeSource};
use crate::source::{Roots, Scope, Source};

fn target(
    protocol: &str,
    address: &str,
    host: &str,
    port: u32,
    unix: &str,
    location: &str,
) -> UpstreamTarget {
    UpstreamTarget {
        protocol: protocol.into(),
        address: address.into(),
        host: host.into(),
        port,
        unix_path: unix.into(),
        server_names: vec!["_".into(), "site.test".into()],
        location: location.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn probes_each_distinct_target_once() {
    let server = serve(Behaviour::Reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ))
    .await;
    let port = server.addr.port();
    let addr = format!("127.0.0.1:{port}");
    let run = tempfile::tempdir().unwrap();
    let scope = Scope {
        roots: Roots {
            run: run.path().to_path_buf(),
            ..Roots::default()
        },
        proxies: vec![ProxyConfig {
            kind: "nginx".into(),
            targets: vec![
                target("http", &addr, "127.0.0.1", u32::from(port), "", "/api/"),
                target("http", &addr, "127.0.0.1", u32::from(port), "", "~ \\.php$"),
                target(
                    "fastcgi",
                    "unix:/run/php/fpm.sock",
                    "",
                    0,
                    "/run/php/fpm.sock",
                    "/",
                ),
            ],
            ..Default::default()
        }],
        ..Scope::default()
    };
    let mut source = ProbeSource::default();
    let planned = source.plan(&scope);
    assert_eq!(planned.len(), 2);
    let section = source.collect(&scope).await.unwrap();
    assert_eq!(section.probes.len(), 2);
    let fcgi = section
        .probes
        .iter()
        .find(|p| p.target.as_ref().unwrap().protocol == "fastcgi")
        .unwrap();
    assert_eq!(fcgi.outcome, "no_such_socket");
    assert_eq!(
        PathBuf::from(fcgi.peer.trim_start_matches("unix:")),
        run.path().join("php/fpm.sock")
    );
    let http = section
        .probes
        .iter()
        .find(|p| p.target.as_ref().unwrap().protocol == "http")
        .unwrap();
    assert_eq!(
        (http.outcome.as_str(), http.status, http.phase.as_str()),
        ("ok", 200, "")
    );
    let seen = String::from_utf8(server.requests.lock().unwrap()[0].clone()).unwrap();
    assert!(
        seen.starts_with("GET /api/ ") && seen.contains("Host: site.test\r\n"),
        "{seen}"
    );
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[test]
fn certificates_are_verified_only_where_the_proxy_verifies() {
    let mut verified = target("https", "10.0.0.1:443", "10.0.0.1", 443, "", "/");
    verified.tls_verify = true;
    let unverified = target("https", "10.0.0.2:443", "10.0.0.2", 443, "", "/");
    let scope = Scope {
        proxies: vec![ProxyConfig {
            kind: "nginx".into(),
            targets: vec![verified, unverified],
            ..Default::default()
        }],
        ..Scope::default()
    };
    let planned = ProbeSource::default().plan(&scope);
    let verify: Vec<(&str, bool)> = planned
        .iter()
        .map(|(t, r)| (t.host.as_str(), r.tls.verify))
        .collect();
    assert_eq!(verify, [("10.0.0.1", true), ("10.0.0.2", false)]);
}

#[tokio::test]
async fn cross_probe_reports_an_observation_per_site() {
    let page = include_bytes!("../../../probe/fixtures/pages/haproxy-503.http").to_vec();
    let server = serve(Behaviour::Reply(page)).await;
    let sites = vec![CrossProbeSite {
        site: "shop".into(),
        url: format!("http://{}/", server.addr),
    }];
    let mut source = CrossProbeSource::new("web-1", sites).with_template(FetchRequest::new(""));
    let pairs = vec![("shop".to_string(), "http://x/".to_string())];
    let host = "web-1".to_string();
    assert_eq!(CrossProbeSource::new(&host, &pairs).sites().len(), 1);
    let section = source.collect(&Scope::default()).await.unwrap();
    let obs = &section.observations[0];
    assert_eq!(
        (obs.vantage.as_str(), obs.target.as_str()),
        ("agent/web-1", "public")
    );
    assert_eq!(
        (obs.outcome.as_str(), obs.status, obs.fingerprint.as_str()),
        ("ok", 503, "haproxy")
    );
    assert!(obs.timing.unwrap().total_ms >= obs.timing.unwrap().ttfb_ms);
}
