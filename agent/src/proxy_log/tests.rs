//! The proxy-log sources end to end: the real nginx (temp prefix, loopback
//! port) proxies to a closed port and to a live upstream; the config source
//! names its logs, and the log sources turn what nginx wrote into signals
//! and status counts.

use std::net::TcpListener as StdListener;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::proxy_config::ProxyConfigSource;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!("GET {path} HTTP/1.0\r\nHost: t.test\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

struct Nginx {
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let d = self.dir.path();
        let _ = std::process::Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-s", "stop"])
            .status();
    }
}

#[tokio::test]
async fn real_nginx_errors_become_signals_and_counts() {
    let ok = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ok_port = ok.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = ok.accept().await {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
        }
    });
    let (port, closed) = (free_port(), free_port());
    let nginx = Nginx {
        dir: tempfile::tempdir().unwrap(),
    };
    let d = nginx.dir.path().display().to_string();
    let conf = format!(
        "error_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{ access_log {d}/access.log; server {{ listen 127.0.0.1:{port}; server_name t.test;\n\
         error_log {d}/t.error.log;\n\
         location /refused {{ proxy_pass http://127.0.0.1:{closed}; }}\n\
         location /ok {{ proxy_pass http://127.0.0.1:{ok_port}; }} }} }}\n"
    );
    std::fs::write(nginx.dir.path().join("nginx.conf"), conf).unwrap();
    let mut config =
        ProxyConfigSource::new(crate::proxy_config::tests::nginx_only(nginx.dir.path()));
    let scope = Scope {
        proxies: config.collect(&Scope::default()).await.unwrap().proxies,
        ..Scope::default()
    };
    let status = std::process::Command::new("/usr/sbin/nginx")
        .arg("-p")
        .arg(nginx.dir.path())
        .arg("-c")
        .arg(nginx.dir.path().join("nginx.conf"))
        .status()
        .unwrap();
    assert!(status.success());
    let mut errors = ProxyLogSource::default();
    let mut access = AccessLogSource::new(ProxyLogSettings::default(), config.access_formats());
    // First collect records the ends of the files (history is not replayed).
    assert!(errors.collect(&scope).await.unwrap().signals.is_empty());
    assert!(access.collect(&scope).await.unwrap().counts.is_empty());

    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(get(port, "/refused").await.starts_with("HTTP/1.1 502"));
    assert!(get(port, "/ok").await.starts_with("HTTP/1.1 200"));

    let (mut signals, mut counts) = (Vec::new(), Vec::new());
    while Instant::now() < deadline && (signals.is_empty() || counts.len() < 2) {
        let e = errors.collect(&scope).await.unwrap();
        assert!(e.files.iter().any(|f| f.ends_with("t.error.log")), "{e:?}");
        signals.extend(e.signals);
        counts.extend(access.collect(&scope).await.unwrap().counts);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(signals.len(), 1, "{signals:?}");
    let s = &signals[0];
    assert_eq!(
        s.cause,
        gw502_vocab::Cause::join_set(gw502_proxy::line::REFUSED)
    );
    assert_eq!(
        (s.proxy.as_str(), s.server.as_str(), s.status, s.count),
        ("nginx", "t.test", 502, 1)
    );
    assert_eq!(s.upstream, format!("http://127.0.0.1:{closed}"));
    assert_eq!(s.samples.len(), 1);
    counts.sort_by_key(|c| c.status);
    let got: Vec<(u32, u32)> = counts.iter().map(|c| (c.status, c.count)).collect();
    assert_eq!(got, vec![(200, 1), (502, 1)]);
}

/// A journald-only host: the HAProxy config names `/var/log/haproxy.log`, which no
/// syslog daemon writes, so the source reads the unit's journal (here a stand-in
/// journalctl printing a real capture, `agent/fixtures/haproxy-journal/`); a proxy
/// without a unit, or a log that exists, is read as a file as before.
#[tokio::test]
async fn a_missing_haproxy_log_is_read_from_its_units_journal() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/haproxy-journal/haproxy.json"
    );
    let stub = dir.path().join("journalctl");
    std::fs::write(&stub, format!("#!/bin/sh\nexec cat {capture}\n")).unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let missing = dir.path().join("haproxy.log");
    let present = dir.path().join("present.log");
    std::fs::write(&present, b"").unwrap();
    let proxy = |unit: &str, log: &std::path::Path| ProxyConfig {
        kind: "haproxy".into(),
        unit: unit.into(),
        error_logs: vec![log.display().to_string()],
        ..ProxyConfig::default()
    };
    let scope = Scope {
        proxies: vec![proxy("haproxy.service", &missing)],
        ..Scope::default()
    };
    let files = log_files(&scope, false);
    let (kept, units) = journal_fallbacks(&scope, files.clone());
    assert!(kept.is_empty());
    assert_eq!(
        units,
        [("haproxy".into(), "haproxy.service".into(), String::new())]
    );
    let no_unit = Scope {
        proxies: vec![proxy("", &missing)],
        ..Scope::default()
    };
    assert_eq!(
        journal_fallbacks(&no_unit, log_files(&no_unit, false)).1,
        []
    );
    let file = Scope {
        proxies: vec![proxy("haproxy.service", &present)],
        ..Scope::default()
    };
    assert_eq!(journal_fallbacks(&file, log_files(&file, false)).0.len(), 1);

    let mut source = ProxyLogSource::new(ProxyLogSettings::default());
    source.journal = UnitJournal::new(stub);
    let section = source.collect(&scope).await.unwrap();
    assert_eq!(section.files, ["journal:haproxy.service"]);
    let refused = section
        .signals
        .iter()
        .find(|s| s.status == 503 && s.cause.contains("service_down"))
        .unwrap_or_else(|| panic!("{:?}", section.signals));
    assert_eq!(refused.proxy, "haproxy");
    assert!(refused.count >= 3, "{refused:?}");
}
