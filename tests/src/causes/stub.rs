//! A tiny HTTP/1.1 server on a loopback address that answers every request
//! with the raw response it currently holds: an edge's or a proxy's error
//! page, or a healthy answer. Tests swap the response to make a site fail
//! and recover while the collector's edge prober keeps probing it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// nginx 1.22.1's own 502 page (probe/fixtures/pages/nginx-502.http).
pub const NGINX_502: &[u8] = include_bytes!("../../../probe/fixtures/pages/nginx-502.http");
/// HAProxy 2.6.12's 503 with no server available (probe/fixtures/pages/haproxy-503.http).
pub const HAPROXY_503: &[u8] = include_bytes!("../../../probe/fixtures/pages/haproxy-503.http");

/// A healthy answer from the application.
pub fn ok_page() -> Vec<u8> {
    raw(
        200,
        "OK",
        &[("content-type", "text/plain")],
        "hello from the app\n",
    )
}

/// An error Cloudflare generated itself: its headers (`server: cloudflare`,
/// `cf-ray`, `cf-error-type`) and its unbranded page, as TAXONOMY §3
/// describes them. `body_code` is the `error code: 1016`-style code, if any.
pub fn cloudflare(status: u16, reason: &str, body_code: Option<&str>) -> Vec<u8> {
    let code = body_code.map_or(String::new(), |c| format!("error code: {c}\n"));
    let body = format!(
        "<html>\n<head><title>{status} {reason}</title></head>\n<body>\n<center><h1>{status} {reason}</h1></center>\n{code}<hr><center>cloudflare</center>\n</body>\n</html>\n"
    );
    raw(
        status,
        reason,
        &[
            ("server", "cloudflare"),
            ("cf-ray", "8f1e2d3c4b5a6978-FRA"),
            ("cf-error-type", "origin"),
            ("content-type", "text/html"),
        ],
        &body,
    )
}

/// A raw HTTP/1.1 response with `Connection: close` and a length.
pub fn raw(status: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

/// A running stub; stops when dropped.
pub struct Stub {
    /// Where it listens.
    pub addr: SocketAddr,
    response: Arc<Mutex<Vec<u8>>>,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Stub {
    /// Serves `response` on `ip`, port `port` (0 for any).
    pub async fn start(ip: IpAddr, port: u16, response: Vec<u8>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(ip, port)).await?;
        let addr = listener.local_addr()?;
        let response = Arc::new(Mutex::new(response));
        let hits = Arc::new(AtomicUsize::new(0));
        let (current, count) = (response.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let current = current.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    // Read the request head (bounded), then answer and close.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 2048];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let bytes = current.lock().map(|r| r.clone()).unwrap_or_default();
                    let _ = stream.write_all(&bytes).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            response,
            hits,
            task,
        })
    }

    /// An "edge" on 127.0.0.1 and an "origin" on 127.0.0.2 on the same port,
    /// so the collector's direct origin probe (site port, host address) lands
    /// on the origin stub.
    pub async fn edge_and_origin(edge: Vec<u8>, origin: Vec<u8>) -> std::io::Result<(Self, Self)> {
        let mut last = None;
        for _ in 0..50 {
            let front = Self::start([127, 0, 0, 1].into(), 0, edge.clone()).await?;
            match Self::start([127, 0, 0, 2].into(), front.addr.port(), origin.clone()).await {
                Ok(back) => return Ok((front, back)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no common free port")))
    }

    /// Answers `response` from now on.
    pub fn set(&self, response: Vec<u8>) {
        if let Ok(mut current) = self.response.lock() {
            *current = response;
        }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// The site URL for this stub.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
