//! Edge probes against real servers on loopback: the SSRF guard keeping a
//! probe from connecting at all, real nginx and HAProxy error pages, and a
//! Cloudflare-shaped answer that sends the prober to the origin, and a site
//! configured by address probed under its name.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{EdgeProber, EdgeSettings, OriginTarget, SiteTarget};

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

/// Answers every connection with `reply` after reading the request head.
async fn serve(reply: &'static [u8]) -> Server {
    serve_on("127.0.0.1:0", reply).await
}

/// As [`serve`], bound to `bind` (`[::]:0` takes both families).
async fn serve_on(bind: &str, reply: &'static [u8]) -> Server {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).into_owned());
            let _ = stream.write_all(reply).await;
            let _ = stream.shutdown().await;
        }
    });
    Server { addr, requests }
}

fn settings(allow_private: bool) -> EdgeSettings {
    EdgeSettings {
        allow_private,
        timeout: Duration::from_secs(5),
        ..EdgeSettings::default()
    }
}

fn site(url: String, origins: Vec<OriginTarget>) -> SiteTarget {
    SiteTarget {
        name: "shop".into(),
        url,
        origins,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn guard_blocks_before_connecting_and_allow_private_lets_through() {
    let server = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    let target = site(format!("http://{}/", server.addr), vec![]);

    let blocked = EdgeProber::new(settings(false), "collector/c1")
        .probe_site(&target)
        .await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].outcome, "blocked", "{:?}", blocked[0]);
    assert!(blocked[0].detail.contains("loopback"), "{:?}", blocked[0]);
    assert!(
        server.requests.lock().unwrap().is_empty(),
        "the guard let a connection through"
    );

    let numeric = site(format!("http://2130706433:{}/", server.addr.port()), vec![]);
    let blocked = EdgeProber::new(settings(false), "collector/c1")
        .probe_site(&numeric)
        .await;
    assert_eq!(blocked[0].outcome, "blocked");
    assert!(server.requests.lock().unwrap().is_empty());

    let allowed = EdgeProber::new(settings(true), "collector/c1")
        .probe_site(&target)
        .await;
    assert_eq!(
        (allowed[0].outcome.as_str(), allowed[0].status),
        ("ok", 200),
        "{:?}",
        allowed[0]
    );
    assert_eq!(
        (allowed[0].vantage.as_str(), allowed[0].target.as_str()),
        ("collector/c1", "public")
    );
    assert_eq!(allowed[0].peer, server.addr.to_string());
    assert_eq!(server.requests.lock().unwrap().len(), 1);

    let mut cidr = settings(false);
    cidr.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let allowed = EdgeProber::new(cidr, "collector/c1")
        .probe_site(&target)
        .await;
    assert_eq!(allowed[0].outcome, "ok");
}

#[tokio::test]
async fn real_nginx_and_haproxy_pages_are_fingerprinted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let (nginx_port, haproxy_port, dead) = (free_port(), free_port(), free_port());
    let garbage = serve(b"this is not http\r\n\r\n").await;
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
             http {{ access_log off; client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;\n\
             uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
             server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass http://127.0.0.1:{dead}; }} }} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("haproxy.cfg"),
        format!(
            "defaults\n mode http\n timeout connect 1s\n timeout client 5s\n timeout server 2s\n\
             frontend fe\n bind 127.0.0.1:{haproxy_port}\n default_backend app\n\
             backend app\n server s1 {}\n",
            garbage.addr
        ),
    )
    .unwrap();
    let _nginx = Running(
        Command::new("nginx")
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _haproxy = Running(
        Command::new("haproxy")
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(nginx_port);
    wait_listening(haproxy_port);
    let prober = EdgeProber::new(settings(true), "collector/c1");
    for (port, maker) in [(nginx_port, "nginx"), (haproxy_port, "haproxy")] {
        let obs = prober
            .probe_site(&site(format!("http://127.0.0.1:{port}/"), vec![]))
            .await;
        assert_eq!(obs.len(), 1, "no origins, so no origin probes");
        let public = &obs[0];
        assert_eq!(
            (public.outcome.as_str(), public.status),
            ("ok", 502),
            "{public:?}"
        );
        assert_eq!(
            (public.fingerprint.as_str(), public.edge.as_str()),
            (maker, ""),
            "{public:?}"
        );
        assert!(public.timing.unwrap().total_ms >= public.timing.unwrap().ttfb_ms);
    }
    assert!(Path::new(&dir.path().join("error.log")).exists());
}

#[tokio::test]
async fn cloudflare_answer_sends_the_prober_to_each_origin() {
    // dual-stack, since `localhost` may resolve to ::1 or 127.0.0.1 first
    let edge = serve_on(
        "[::]:0",
        b"HTTP/1.1 521 \r\nServer: cloudflare\r\nCF-RAY: 8f00aa11bb22cc33-AMS\r\ncf-error-type: 5xx\r\n\
          Content-Type: text/plain\r\nContent-Length: 15\r\n\r\nerror code: 521",
    )
    .await;
    let origin = serve(b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\n\r\nok").await;
    let dead = free_port();
    let url = format!("http://localhost:{}/", edge.addr.port());
    let origins = vec![
        OriginTarget {
            host_id: "web-1".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: Some(origin.addr.port()),
        },
        OriginTarget {
            host_id: "web-2".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: Some(dead),
        },
    ];
    let mut allow = settings(false);
    allow.allow_cidrs = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let obs = EdgeProber::new(allow, "collector/c1")
        .probe_site(&site(url, origins))
        .await;
    assert_eq!(obs.len(), 3, "{obs:?}");
    let public = &obs[0];
    assert_eq!(
        (
            public.status,
            public.edge.as_str(),
            public.fingerprint.as_str(),
            public.edge_error.as_str()
        ),
        (521, "cloudflare", "cloudflare_unbranded", "521"),
        "{public:?}"
    );
    assert!(public.headers.iter().any(|h| h.name == "cf-ray"));
    let web1 = obs.iter().find(|o| o.target == "origin/web-1").unwrap();
    assert_eq!(
        (web1.outcome.as_str(), web1.status, web1.edge.as_str()),
        ("ok", 200, ""),
        "{web1:?}"
    );
    let seen = origin.requests.lock().unwrap()[0].clone();
    assert!(
        seen.contains(&format!("Host: localhost:{}\r\n", edge.addr.port())),
        "{seen}"
    );
    let web2 = obs.iter().find(|o| o.target == "origin/web-2").unwrap();
    assert_eq!(web2.outcome, "refused", "{web2:?}");

    let mut strict = settings(false);
    strict.allow_cidrs = vec!["::1/128".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
    let origins = vec![OriginTarget {
        host_id: "web-3".into(),
        address: "10.1.2.3".parse().unwrap(),
        port: Some(80),
    }];
    let url = format!("http://localhost:{}/", edge.addr.port());
    let obs = EdgeProber::new(strict, "collector/c1")
        .probe_site(&site(url, origins))
        .await;
    let web3 = obs.iter().find(|o| o.target == "origin/web-3").unwrap();
    assert_eq!(
        web3.outcome, "blocked",
        "an origin outside the allowed networks is never contacted"
    );
}

#[tokio::test]
async fn a_site_configured_by_address_is_probed_under_its_name() {
    let origin =
        serve(b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 0\r\n\r\n").await;
    let port = origin.addr.port();
    let by_address = SiteTarget {
        name: "shop.example".into(),
        url: format!("http://127.0.0.1:{port}/"),
        origins: vec![OriginTarget {
            host_id: "web-1".into(),
            address: "127.0.0.1".parse().unwrap(),
            port: None,
        }],
    };
    let obs = EdgeProber::new(settings(true), "collector/c1")
        .probe_site(&by_address)
        .await;
    assert_eq!(
        obs.len(),
        2,
        "a failing public probe sends the prober to the origin: {obs:?}"
    );
    let seen = origin.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert!(
            request.contains(&format!("Host: shop.example:{port}\r\n")),
            "public and origin probes send the site's name: {request}"
        );
    }

    // A site whose name is no host name (free text, a single label) keeps the
    // URL's own Host.
    for name in ["Shop EU", "site3"] {
        let plain = SiteTarget {
            name: name.into(),
            ..by_address.clone()
        };
        EdgeProber::new(settings(true), "collector/c1")
            .probe_public(&plain)
            .await;
        let last = origin.requests.lock().unwrap().last().cloned().unwrap();
        assert!(
            last.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{name}: {last}"
        );
    }
}
