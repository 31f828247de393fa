//! [`fetch()`]: one bounded `GET` of a public URL with timing phases, the
//! `curl -I https://site` of the operator, shared by the agent's
//! cross-probes and the collector's edge prober.
//!
//! The caller may pin the address to connect to (the collector passes the
//! address its SSRF guard vetted, so a second resolution cannot rebind) and
//! override the Host header and SNI (to probe an origin directly under the
//! site's name). Redirects are never followed; the body is kept up to a cap
//! for fingerprinting.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::client::http_request;
use super::connect::{Endpoint, Io, connect, ms_since};
use super::head::{HeadLimits, header};
use super::outcome::{Failure, Outcome, Phase};
use super::tls::{TlsPolicy, handshake};

/// One fetch to make.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Connect to this address instead of resolving the URL's host.
    pub peer: Option<SocketAddr>,
    /// `Host` header; defaults to the URL's authority.
    pub host_header: Option<String>,
    /// TLS server name (SNI and the name verified); defaults to the URL's host.
    pub tls_name: Option<String>,
    /// Time allowed for resolution and connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole fetch, body included.
    pub total_timeout: Duration,
    /// Body bytes kept at most.
    pub body_cap: usize,
    /// A response head above this many bytes is `header_too_big`.
    pub max_head: usize,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Certificate policy.
    pub tls: TlsPolicy,
}

impl FetchRequest {
    /// A fetch of `url` with default bounds (3 s connect, 10 s total, 16 KiB body).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            peer: None,
            host_header: None,
            tls_name: None,
            connect_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(10),
            body_cap: 16 * 1024,
            max_head: 64 * 1024,
            user_agent: concat!("gw502/", env!("CARGO_PKG_VERSION")).to_string(),
            tls: TlsPolicy::default(),
        }
    }
}

/// Time spent in each phase, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Name resolution.
    pub dns_ms: u32,
    /// TCP connect.
    pub connect_ms: u32,
    /// TLS handshake.
    pub tls_ms: u32,
    /// From the start to the complete response head.
    pub ttfb_ms: u32,
    /// From the start to the end of the fetch.
    pub total_ms: u32,
}

/// What a fetch saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The outcome word.
    pub outcome: Outcome,
    /// Where it stopped (`None` when it succeeded).
    pub phase: Option<Phase>,
    /// Response status, 0 when none.
    pub status: u16,
    /// Response headers in order.
    pub headers: Vec<(String, String)>,
    /// Size of the response head.
    pub header_bytes: u32,
    /// Body prefix, de-chunked, at most `body_cap` bytes.
    pub body: Vec<u8>,
    /// Phase timings.
    pub timing: Timing,
    /// The address connected to.
    pub peer: String,
    /// Operator words, with a docs/PROBES.md prefix where one applies.
    pub detail: String,
}

impl Fetched {
    /// A fetch that ended in `failure` before any response.
    pub fn failed(failure: Failure) -> Self {
        Self {
            outcome: failure.outcome,
            phase: Some(failure.phase),
            status: 0,
            headers: Vec::new(),
            header_bytes: 0,
            body: Vec::new(),
            timing: Timing::default(),
            peer: String::new(),
            detail: failure.detail,
        }
    }
}

/// The parts of a fetchable URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `true` for https.
    pub tls: bool,
    /// Host name or IP literal without brackets.
    pub host: String,
    /// Port (explicit or the scheme's).
    pub port: u16,
    /// Path and query.
    pub path: String,
    /// Authority for the Host header.
    pub authority: String,
}

/// Parses an http(s) URL with the WHATWG rules, so numeric hosts such as
/// `2130706433` come out as the IP they name.
pub fn parse_target(raw: &str) -> Result<Target, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("url {raw:?}: {e}"))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return Err(format!("url scheme {other:?} is not http or https")),
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("url {raw:?} has no host")),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host_str = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(p) => format!("{host_str}:{p}"),
        None => host_str.to_string(),
    };
    Ok(Target {
        tls,
        host,
        port,
        path,
        authority,
    })
}

/// Fetches `req.url` once; never fails, every problem is an outcome.
pub async fn fetch(req: &FetchRequest) -> Fetched {
    let start = Instant::now();
    let target = match parse_target(&req.url) {
        Ok(t) => t,
        Err(why) => return Fetched::failed(Failure::new(Outcome::Blocked, Phase::Connect, why)),
    };
    let deadline = tokio::time::Instant::now() + req.total_timeout;
    let mut timing = Timing::default();
    let endpoint = Endpoint::Tcp {
        host: target.host.clone(),
        port: target.port,
    };
    let connected = match connect(
        &endpoint,
        req.peer,
        req.connect_timeout.min(req.total_timeout),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            let mut out = Fetched::failed(e.failure);
            out.peer = e.peer;
            out.timing.dns_ms = e.dns_ms;
            out.timing.total_ms = ms_since(start);
            return out;
        }
    };
    timing.dns_ms = connected.dns_ms;
    timing.connect_ms = connected.connect_ms;
    let peer = connected.peer;
    let mut io = connected.io;
    let mut certificate_problem = None;
    let finish = |failure: Failure, bytes: usize, timing: Timing| {
        let mut out = Fetched::failed(failure);
        out.peer = peer.clone();
        out.header_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        out.timing = Timing {
            total_ms: ms_since(start),
            ..timing
        };
        out
    };
    if target.tls {
        let tls_start = Instant::now();
        let name = req.tls_name.clone().unwrap_or_else(|| target.host.clone());
        match tokio::time::timeout_at(deadline, handshake(io, &name, &req.tls)).await {
            Ok(Ok(done)) => {
                certificate_problem = done.certificate_problem;
                io = Box::new(done.stream);
            }
            Ok(Err(failure)) => return finish(failure, 0, timing),
            Err(_) => return finish(Failure::timeout(Phase::Tls), 0, timing),
        }
        timing.tls_ms = ms_since(tls_start);
    }
    let host = req
        .host_header
        .clone()
        .unwrap_or_else(|| target.authority.clone());
    let request = http_request(&target.path, &host, &req.user_agent);
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    let limits = HeadLimits {
        max_head: req.max_head,
        read_cap: req.max_head.saturating_add(1).max(64 * 1024),
        timeout: remaining,
    };
    let read = match super::client::http_exchange(io.as_mut(), &request, limits).await {
        Ok(read) => read,
        Err((failure, bytes)) => return finish(failure, bytes, timing),
    };
    timing.ttfb_ms = ms_since(start);
    let body = read_body(
        io.as_mut(),
        read.rest,
        &read.head.headers,
        req.body_cap,
        deadline,
    )
    .await;
    timing.total_ms = ms_since(start);
    let status = read.head.status;
    let (outcome, phase, detail) = match certificate_problem {
        Some(problem) if req.tls.verify => (
            Outcome::TlsError,
            Some(Phase::Tls),
            format!("{problem}; answered {status} without verification"),
        ),
        Some(problem) => (Outcome::Ok, None, problem),
        None => (Outcome::Ok, None, String::new()),
    };
    Fetched {
        outcome,
        phase,
        status,
        header_bytes: u32::try_from(read.head.head_len).unwrap_or(u32::MAX),
        headers: read.head.headers,
        body,
        timing,
        peer,
        detail,
    }
}

/// Reads the body prefix until the cap, the end of the body or the deadline.
async fn read_body(
    io: &mut dyn Io,
    mut body: Vec<u8>,
    headers: &[(String, String)],
    cap: usize,
    deadline: tokio::time::Instant,
) -> Vec<u8> {
    let length: Option<usize> =
        header(headers, "content-length").and_then(|v| v.trim().parse().ok());
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let wire_cap = if chunked {
        cap.saturating_mul(2).saturating_add(1024)
    } else {
        cap
    };
    let mut chunk = [0u8; 4096];
    while body.len() < wire_cap && length.is_none_or(|l| body.len() < l) {
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    body.truncate(cap);
    body
}

/// Decodes as much of a chunked body as is present (best effort, pure).
pub fn dechunk(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = wire.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&wire[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let data = &wire[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        wire = &data[size + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_hosts_are_normalised() {
        assert_eq!(
            parse_target("http://2130706433/").unwrap().host,
            "127.0.0.1"
        );
        assert_eq!(
            parse_target("http://0177.0.0.1/").unwrap().host,
            "127.0.0.1"
        );
        assert_eq!(parse_target("http://0x7f.1/").unwrap().host, "127.0.0.1");
        assert_eq!(
            parse_target("http://[::ffff:7f00:1]/").unwrap().host,
            "::ffff:127.0.0.1"
        );
        let t = parse_target("https://example.com:8443/a?b=1").unwrap();
        assert_eq!(
            (t.port, t.path.as_str(), t.authority.as_str()),
            (8443, "/a?b=1", "example.com:8443")
        );
        assert!(parse_target("ftp://example.com/").is_err());
        assert!(parse_target("file:///etc/passwd").is_err());
    }

    #[test]
    fn dechunk_handles_partial_bodies() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            b"hello world"
        );
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }
}
