//! The API readers against a real HTTP server on loopback that serves the
//! answers captured from the real Traefik 3.7.15 and Envoy 1.40.0
//! (`proxy/fixtures/traefik/`, `proxy/fixtures/envoy/`) verbatim, one of
//! them chunked as Go's and Envoy's servers send long answers; the config
//! files are the captured runs' own, under a temp `/etc` root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::super::tests::none_installed;
use super::super::*;
use crate::source::{Roots, Scope};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../proxy/fixtures");

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{FIX}/{path}")).unwrap()
}

/// Serves `answers` (request path to body) over HTTP/1.1 on 127.0.0.1:0;
/// bodies whose path is in `chunked` go out chunked; other paths get 404.
async fn serve(
    answers: BTreeMap<&'static str, Vec<u8>>,
    chunked: &'static [&'static str],
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answers = answers.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("");
                let reply = match answers.get(path) {
                    Some(body) if chunked.contains(&path) => {
                        let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                        for part in body.chunks(4096) {
                            r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                            r.extend_from_slice(part);
                            r.extend_from_slice(b"\r\n");
                        }
                        r.extend_from_slice(b"0\r\n\r\n");
                        r
                    }
                    Some(body) => {
                        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        r.extend_from_slice(body);
                        r
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                };
                let _ = stream.write_all(&reply).await;
            });
        }
    });
    addr
}

fn scope(etc: &Path) -> Scope {
    Scope {
        roots: Roots {
            etc: etc.to_path_buf(),
            ..Roots::default()
        },
        ..Scope::default()
    }
}

/// A temp `/etc` with the static config naming the captured YAML dynamic
/// config through the file provider.
fn traefik_etc() -> tempfile::TempDir {
    let etc = tempfile::tempdir().unwrap();
    let dir = etc.path().join("traefik");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("traefik.yml"),
        "entryPoints:\n  web:\n    address: \"127.0.0.1:80\"\nproviders:\n  file:\n    filename: /etc/traefik/dynamic.yml\naccessLog:\n  filePath: /var/log/traefik/access.log\n  format: json\n",
    )
    .unwrap();
    std::fs::write(dir.join("dynamic.yml"), fixture("traefik/dynamic.yaml")).unwrap();
    etc
}

async fn collect(settings: ProxyConfigSettings, etc: &Path) -> Vec<ProxyConfig> {
    let mut src = ProxyConfigSource::new(settings);
    src.collect(&scope(etc)).await.unwrap().proxies
}

#[tokio::test]
async fn traefik_api_answers_give_server_status() {
    let etc = traefik_etc();
    let api = serve(
        BTreeMap::from([
            ("/api/http/routers", fixture("traefik/api-routers.json")),
            ("/api/http/services", fixture("traefik/api-services.json")),
        ]),
        &["/api/http/services"],
    )
    .await;
    let settings = none_installed()
        .with_config(
            ProxyKind::Traefik,
            PathBuf::from("/etc/traefik/traefik.yml"),
        )
        .with_api(ProxyKind::Traefik, Some(api));
    let proxies = collect(settings, etc.path()).await;
    assert_eq!(proxies.len(), 1, "{proxies:?}");
    let p = &proxies[0];
    assert_eq!(
        (p.kind.as_str(), p.unit.as_str()),
        ("traefik", "traefik.service")
    );
    // No log.filePath: Traefik logs to stdout, read from the unit journal.
    assert_eq!(
        p.error_logs,
        ["journal:traefik.service", "/var/log/traefik/access.log"]
    );
    assert_eq!(p.targets.len(), 10, "{:?}", p.targets);
    let down = p.targets.iter().find(|t| t.group == "down@file").unwrap();
    assert_eq!(
        (down.health.as_str(), down.health_detail.as_str()),
        ("down", "DOWN")
    );
    assert_eq!(down.server_names, ["down.test"]);
    assert_eq!(p.targets.iter().filter(|t| t.health == "up").count(), 9);
}

#[tokio::test]
async fn traefik_without_api_keeps_the_file_provider_view() {
    let etc = traefik_etc();
    let api = serve(BTreeMap::new(), &[]).await;
    let settings = none_installed()
        .with_config(
            ProxyKind::Traefik,
            PathBuf::from("/etc/traefik/traefik.yml"),
        )
        .with_api(ProxyKind::Traefik, Some(api));
    let proxies = collect(settings, etc.path()).await;
    let p = &proxies[0];
    assert_eq!(p.targets.len(), 10, "{:?}", p.targets);
    assert!(p.targets.iter().all(|t| t.health.is_empty()));
    let refused = p.targets.iter().find(|t| t.group == "refused").unwrap();
    assert_eq!(
        (refused.host.as_str(), refused.server_names.as_slice()),
        ("127.0.0.1", &["refused.test".to_string()][..])
    );
    assert_eq!(p.servers.len(), 10);
    assert_eq!(p.servers[0].listens, ["127.0.0.1:80"]);
}

#[tokio::test]
async fn envoy_admin_answers_give_health_flags() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("envoy")).unwrap();
    std::fs::write(
        etc.path().join("envoy/envoy.yaml"),
        fixture("envoy/envoy.yaml"),
    )
    .unwrap();
    let admin = serve(
        BTreeMap::from([
            ("/config_dump", fixture("envoy/config_dump.json")),
            ("/clusters?format=json", fixture("envoy/clusters.json")),
        ]),
        &["/config_dump"],
    )
    .await;
    let settings = none_installed()
        .with_config(ProxyKind::Envoy, PathBuf::from("/etc/envoy/envoy.yaml"))
        .with_api(ProxyKind::Envoy, Some(admin));
    let proxies = collect(settings, etc.path()).await;
    assert_eq!(proxies.len(), 1, "{proxies:?}");
    let p = &proxies[0];
    assert_eq!(
        (p.kind.as_str(), p.unit.as_str()),
        ("envoy", "envoy.service")
    );
    assert_eq!(p.targets.len(), 15, "{:?}", p.targets);
    let flags = |c: &str| {
        let t = p.targets.iter().find(|t| t.group == c).unwrap();
        (t.health.clone(), t.health_detail.clone())
    };
    assert_eq!(
        flags("down"),
        ("down".to_string(), "/failed_active_hc".to_string())
    );
    assert_eq!(
        flags("ejected"),
        ("down".to_string(), "/failed_outlier_check".to_string())
    );
    assert_eq!(flags("shop"), ("up".to_string(), String::new()));
    assert_eq!(flags("nxdomain"), (String::new(), String::new()));
    assert_eq!(p.error_logs.len(), 2);
}
