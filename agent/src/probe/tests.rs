//! `ProbeSource` and `CrossProbeSource` over a scope, against real servers.

use std::path::PathBuf;
use std::time::Duration;

use gw502_proto::v1::{ProxyConfig, UpstreamTarget};

use gw502_probe::FetchRequest;
use gw502_probe::testing::{Behaviour, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::probe::{CrossProbeSite, CrossProbeSource, ProbeSettings, ProbeSource};
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

/// A scope of one proxy of `kind` with `targets`.
fn proxy_scope(kind: &str, targets: Vec<UpstreamTarget>) -> Scope {
    Scope {
        proxies: vec![ProxyConfig {
            kind: kind.into(),
            targets,
            ..Default::default()
        }],
        ..Scope::default()
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

/// A probe that outlives its report's budget goes into a later report; the
/// target keeps its newest finished probe meanwhile, and is never probed twice
/// at once.
#[tokio::test]
async fn a_probe_that_outlives_the_budget_goes_into_a_later_report() {
    let (listener, t) = upstream().await;
    let scope = proxy_scope("nginx", vec![t]);
    let mut source = ProbeSource::new(ProbeSettings {
        budget: Duration::from_secs(1),
        ..Duration::from_secs(60).into()
    });

    // The upstream takes the request and does not answer: the report goes without it.
    let first = source.collect(&scope).await.unwrap();
    assert!(first.probes.is_empty(), "{first:?}");
    let mut held = take(&listener).await;

    // It answers after that report: the probe of the first report brings it.
    held.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let second = source.collect(&scope).await.unwrap();
    let answered = second
        .probes
        .first()
        .expect("the answer of the running probe");
    assert_eq!((answered.outcome.as_str(), answered.status), ("ok", 503));

    // A new probe hangs again: its report keeps the answered probe, stamped when it started.
    let third = source.collect(&scope).await.unwrap();
    assert_eq!(third.probes, second.probes);
    let (_again, _) = listener.accept().await.unwrap();
    let fourth = source.collect(&scope).await.unwrap();
    assert_eq!(fourth.probes, second.probes);

    // One request in flight at a time: no third connection was made.
    let pending = tokio::time::timeout(Duration::ZERO, listener.accept()).await;
    assert!(
        pending.is_err(),
        "a second probe ran beside the hanging one"
    );
}

/// An upstream on loopback that the test answers by hand, and its target.
async fn upstream() -> (TcpListener, UpstreamTarget) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let t = target("http", &addr, "127.0.0.1", u32::from(port), "", "/");
    (listener, t)
}

/// Takes a probe's request and holds it.
async fn take(listener: &TcpListener) -> TcpStream {
    let (mut held, _) = listener.accept().await.unwrap();
    let _ = held.read(&mut [0u8; 1024]).await.unwrap();
    held
}

/// Answers `status` and waits for the probe to close its side.
async fn answer(mut held: TcpStream, status: u16) {
    let head = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
    held.write_all(head.as_bytes()).await.unwrap();
    let _ = held.read(&mut [0u8; 64]).await;
}

/// No finished probe is left to wake the agent.
async fn quiet(source: &mut ProbeSource) -> bool {
    tokio::time::timeout(Duration::ZERO, source.late_news())
        .await
        .is_err()
}

/// A report does not wait for a target whose last probe outlived the budget:
/// it goes with the timeout at once, and the answer that comes after all is
/// news for the next report.
#[tokio::test]
async fn a_report_does_not_wait_for_a_target_that_hung_last_time() {
    let (listener, t) = upstream().await;
    let scope = proxy_scope("nginx", vec![t]);
    let mut source = ProbeSource::new(ProbeSettings {
        budget: Duration::from_millis(200),
        ..Duration::from_millis(300).into()
    });

    // The first probe hangs past the budget and times out.
    assert!(source.collect(&scope).await.unwrap().probes.is_empty());
    let _hung = take(&listener).await;
    source.late_news().await;

    // The target answers at once now, but the report does not wait to see it.
    let (report, ()) = tokio::join!(source.collect(&scope), async {
        answer(take(&listener).await, 200).await;
    });
    let outcomes: Vec<_> = report
        .unwrap()
        .probes
        .into_iter()
        .map(|p| p.outcome)
        .collect();
    assert_eq!(outcomes, ["timeout"]);
    // Its answer is news: the agent reports again, with it.
    source.late_news().await;
    let next = source.collect(&scope).await.unwrap();
    assert_eq!(
        (next.probes[0].outcome.as_str(), next.probes[0].status),
        ("ok", 200)
    );
}

/// Between reports, a probe that outlived its report wakes the agent when its
/// target's outcome changed; one that finishes as the last did is kept quietly.
#[tokio::test]
async fn a_late_probe_brings_the_next_report_forward_only_with_news() {
    let (same, same_target) = upstream().await;
    let (changed, changed_target) = upstream().await;
    let scope = proxy_scope("nginx", vec![same_target, changed_target]);
    // Every probe outlives its report.
    let mut source = ProbeSource::new(ProbeSettings {
        budget: Duration::ZERO,
        ..Duration::from_secs(60).into()
    });
    // A target's first answer is news, each on its own.
    assert!(source.collect(&scope).await.unwrap().probes.is_empty());
    let (a, b) = tokio::join!(take(&same), take(&changed));
    answer(a, 200).await;
    answer(b, 200).await;
    source.late_news().await;
    source.late_news().await;
    assert!(quiet(&mut source).await, "a third wake with two probes");

    // The next report carries both; then one answers as before and one changes.
    let carried = source.collect(&scope).await.unwrap();
    assert_eq!(carried.probes.len(), 2);
    let (a, b) = tokio::join!(take(&same), take(&changed));
    answer(a, 200).await;
    answer(b, 502).await;
    source.late_news().await;
    assert!(
        quiet(&mut source).await,
        "woken by the unchanged probe, before the change"
    );
    let after = source.collect(&scope).await.unwrap();
    let statuses: Vec<u32> = after.probes.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        1,
        "{statuses:?}"
    );
}

#[test]
fn a_fastcgi_target_naming_its_script_is_probed_with_it() {
    let mut fixed = target(
        "fastcgi",
        "unix:/run/php/a.sock",
        "",
        0,
        "/run/php/a.sock",
        "^/.*$",
    );
    fixed.fastcgi_script = "/var/www/shop/index.php".into();
    let by_path = target("fastcgi", "127.0.0.1:9000", "127.0.0.1", 9000, "", "/");
    let scope = proxy_scope("apache", vec![fixed, by_path]);
    let scripts: Vec<Option<String>> = ProbeSource::default()
        .plan(&scope)
        .into_iter()
        .map(|(_, r)| r.script_filename)
        .collect();
    assert_eq!(scripts, [Some("/var/www/shop/index.php".to_owned()), None]);
}

#[test]
fn certificates_are_verified_only_where_the_proxy_verifies() {
    let mut verified = target("https", "10.0.0.1:443", "10.0.0.1", 443, "", "/");
    verified.tls_verify = true;
    let unverified = target("https", "10.0.0.2:443", "10.0.0.2", 443, "", "/");
    let scope = proxy_scope("nginx", vec![verified, unverified]);
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

/// A private CA and an HTTPS server on loopback presenting a leaf for
/// `app.internal` signed by it; answers every request `200`.
async fn private_ca_server() -> (std::net::SocketAddr, String) {
    use std::sync::Arc;

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gw502 private ca");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["app.internal".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&chunk[..n]),
                        _ => return,
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ca.pem())
}

/// Probes one verified https target at `addr` naming `ca_file`, with `/etc` under `etc`.
async fn probe_private(
    addr: std::net::SocketAddr,
    ca_file: &str,
    etc: &std::path::Path,
) -> gw502_proto::v1::DirectProbe {
    let mut t = target(
        "https",
        &addr.to_string(),
        "127.0.0.1",
        u32::from(addr.port()),
        "",
        "/",
    );
    t.tls_verify = true;
    t.tls_ca_file = ca_file.into();
    t.tls_server_name = "app.internal".into();
    let scope = Scope {
        roots: Roots {
            etc: etc.to_path_buf(),
            ..Roots::default()
        },
        proxies: vec![ProxyConfig {
            kind: "nginx".into(),
            targets: vec![t],
            ..Default::default()
        }],
        ..Scope::default()
    };
    let mut section = ProbeSource::default().collect(&scope).await.unwrap();
    section.probes.remove(0)
}

#[tokio::test]
async fn the_probe_trusts_the_ca_file_the_proxy_trusts() {
    let (addr, ca_pem) = private_ca_server().await;
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("nginx")).unwrap();
    std::fs::write(etc.path().join("nginx/internal-ca.pem"), &ca_pem).unwrap();
    std::fs::write(etc.path().join("nginx/empty.pem"), "not a certificate\n").unwrap();

    // The proxy's CA file, read through the /etc root: the certificate is good.
    let named = probe_private(addr, "/etc/nginx/internal-ca.pem", etc.path()).await;
    assert_eq!(
        (named.outcome.as_str(), named.status, named.detail.as_str()),
        ("ok", 200, ""),
        "{named:?}"
    );

    // No CA file: the Mozilla roots alone do not know the private CA.
    let default = probe_private(addr, "", etc.path()).await;
    assert_eq!(
        (
            default.outcome.as_str(),
            default.phase.as_str(),
            default.status
        ),
        ("tls_error", "tls", 200)
    );
    assert!(
        default.detail.starts_with("certificate_untrusted:"),
        "{}",
        default.detail
    );

    // A CA file the agent cannot read or that holds no certificate: not judged.
    for (file, why) in [
        ("/etc/nginx/missing.pem", "No such file"),
        ("/etc/nginx/empty.pem", "no certificate"),
    ] {
        let unjudged = probe_private(addr, file, etc.path()).await;
        assert_eq!(
            (unjudged.outcome.as_str(), unjudged.status),
            ("ok", 200),
            "{unjudged:?}"
        );
        assert!(
            unjudged
                .detail
                .contains(&format!("certificate not judged: ca file {file}"))
                && unjudged.detail.contains(why),
            "{}",
            unjudged.detail
        );
    }
}
