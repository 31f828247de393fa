//! The protocol clients of a direct probe: HTTP/1.1 (plain or TLS) and
//! FastCGI over TCP or a unix socket, and a bare connect for protocols the
//! probe does not speak (uwsgi, scgi, gRPC, tcp).
//!
//! Every client is bounded in time (connect and response timeouts) and in
//! bytes (the head read stops at a cap), sends `Connection: close` and never
//! follows a redirect: the probe asks the question the proxy asks.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect::{Endpoint, Io, connect, ms_since};
use super::fastcgi::{RecordError, RecordType, cgi_status, decode_record, encode_request};
use super::head::{HeadLimits, HeadRead, foreign_protocol, preview, read_head};
use super::outcome::{Failure, Outcome, Phase};
use super::tls::{TlsPolicy, handshake};

/// What the probe speaks to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.1 in the clear.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// A FastCGI responder request.
    FastCgi,
    /// A connect only (uwsgi, scgi, grpc, tcp).
    Connect,
}

impl Protocol {
    /// Maps an `UpstreamTarget.protocol` word.
    pub fn from_word(word: &str) -> Self {
        match word {
            "http" => Self::Http,
            "https" => Self::Https,
            "fastcgi" => Self::FastCgi,
            _ => Self::Connect,
        }
    }
}

/// One direct probe to make.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// What to speak.
    pub protocol: Protocol,
    /// `Host` header (HTTP) or `SERVER_NAME`/`HTTP_HOST` (FastCGI).
    pub host_header: String,
    /// Request path.
    pub path: String,
    /// TLS server name; defaults to the endpoint host.
    pub tls_name: Option<String>,
    /// Time allowed for resolution and connect.
    pub connect_timeout: Duration,
    /// Time allowed for the handshake and the response head.
    pub response_timeout: Duration,
    /// `header_too_big` limit and read cap.
    pub max_head: usize,
    /// Bytes read at most while looking for the end of the head.
    pub read_cap: usize,
    /// Certificate policy for `https`.
    pub tls: TlsPolicy,
    /// `SCRIPT_FILENAME` for FastCGI; defaults to the path.
    pub script_filename: Option<String>,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl ProbeRequest {
    /// A request with default limits (2 s connect, 5 s response, 8 KiB head).
    pub fn new(endpoint: Endpoint, protocol: Protocol) -> Self {
        Self {
            endpoint,
            protocol,
            host_header: "localhost".to_string(),
            path: "/".to_string(),
            tls_name: None,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            read_cap: 64 * 1024,
            tls: TlsPolicy::default(),
            script_filename: None,
            user_agent: concat!("gw502-agent/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    fn limits(&self) -> HeadLimits {
        HeadLimits {
            max_head: self.max_head,
            read_cap: self.read_cap.max(self.max_head + 1),
            timeout: self.response_timeout,
        }
    }
}

/// What one direct probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// The outcome word.
    pub outcome: Outcome,
    /// Where it stopped (`None` when it succeeded).
    pub phase: Option<Phase>,
    /// Status of the response (or CGI `Status:`), 0 when none.
    pub status: u16,
    /// Size of the response head seen.
    pub header_bytes: u32,
    /// Operator words with a docs/PROBES.md prefix where one applies.
    pub detail: String,
    /// Time from start to outcome.
    pub elapsed_ms: u32,
    /// The address connected to.
    pub peer: String,
    /// Response headers (HTTP) or CGI headers (FastCGI).
    pub headers: Vec<(String, String)>,
}

/// Removes bytes that could break a request line or header.
pub fn clean_token(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(1024)
        .collect()
}

/// The bytes of a `GET` request.
pub fn http_request(path: &str, host: &str, user_agent: &str) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        clean_token(path),
        clean_token(host),
        user_agent
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .collect::<String>(),
    )
    .into_bytes()
}

/// Sends `request` and reads the response head.
pub async fn http_exchange(
    io: &mut dyn Io,
    request: &[u8],
    limits: HeadLimits,
) -> Result<HeadRead, (Failure, usize)> {
    match tokio::time::timeout(limits.timeout, io.write_all(request)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err((Failure::io(Phase::Request, &e), 0)),
        Err(_) => return Err((Failure::timeout(Phase::Request), 0)),
    }
    read_head(io, limits).await
}

/// Runs one probe; never fails, every problem is an outcome.
pub async fn probe(req: &ProbeRequest) -> ProbeResult {
    let start = Instant::now();
    let mut result = ProbeResult {
        outcome: Outcome::Ok,
        phase: None,
        status: 0,
        header_bytes: 0,
        detail: String::new(),
        elapsed_ms: 0,
        peer: String::new(),
        headers: Vec::new(),
    };
    let fail = |mut result: ProbeResult, failure: Failure, bytes: usize| {
        result.outcome = failure.outcome;
        result.phase = Some(failure.phase);
        result.detail = failure.detail;
        result.header_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        result.elapsed_ms = ms_since(start);
        result
    };
    let connected = match connect(&req.endpoint, None, req.connect_timeout).await {
        Ok(c) => c,
        Err(e) => {
            result.peer = e.peer;
            return fail(result, e.failure, 0);
        }
    };
    result.peer = connected.peer;
    let mut io = connected.io;
    let limits = req.limits();
    let mut certificate_problem = None;
    match req.protocol {
        Protocol::Connect => {
            result.elapsed_ms = ms_since(start);
            return result;
        }
        Protocol::Https => {
            let name = req.tls_name.clone().unwrap_or_else(|| match &req.endpoint {
                Endpoint::Tcp { host, .. } => host.clone(),
                Endpoint::Unix(_) => req.host_header.clone(),
            });
            match tokio::time::timeout(req.response_timeout, handshake(io, &name, &req.tls)).await {
                Ok(Ok(done)) => {
                    certificate_problem = done.certificate_problem;
                    io = Box::new(done.stream);
                }
                Ok(Err(failure)) => return fail(result, failure, 0),
                Err(_) => return fail(result, Failure::timeout(Phase::Tls), 0),
            }
        }
        Protocol::Http | Protocol::FastCgi => {}
    }
    // Each exchange closes its connection before any second look: a
    // one-connection-at-a-time server serves the next connection only when this one ends.
    let exchanged = if req.protocol == Protocol::FastCgi {
        fastcgi_or_http(io, req, limits).await
    } else {
        let request = http_request(&req.path, &req.host_header, &req.user_agent);
        match http_exchange(io.as_mut(), &request, limits).await {
            Ok(read) => plain_to_tls_check(io.as_mut(), read).await,
            Err(e) => Err(e),
        }
    };
    match exchanged {
        Ok((status, head_len, headers, note)) => {
            result.status = status;
            result.header_bytes = u32::try_from(head_len).unwrap_or(u32::MAX);
            result.headers = headers;
            result.detail = note;
            result.elapsed_ms = ms_since(start);
            if let Some(problem) = certificate_problem {
                result.detail = format!("{problem}; answered {status} without verification");
                if req.tls.verify {
                    result.outcome = Outcome::TlsError;
                    result.phase = Some(Phase::Tls);
                }
            }
            result
        }
        Err((failure, bytes)) => {
            let silent_close = matches!(failure.outcome, Outcome::Reset | Outcome::PrematureClose);
            if req.protocol == Protocol::Http && silent_close && bytes == 0 && speaks_tls(req).await
            {
                let failure = Failure::new(
                    Outcome::ProtocolMismatch,
                    failure.phase,
                    format!(
                        "tls_peer: plain HTTP got no answer ({}) and the listener completes a TLS handshake",
                        failure.outcome
                    ),
                );
                return fail(result, failure, 0);
            }
            fail(result, failure, bytes)
        }
    }
}

/// Whether the target completes a TLS handshake: asked when a plain HTTP request was
/// closed or reset without a byte of answer, the way a TLS listener that does not
/// answer plain HTTP with a 400 (OpenSSL-based app servers) drops it. The certificate
/// is not checked: the question is only whether the port speaks TLS.
async fn speaks_tls(req: &ProbeRequest) -> bool {
    let Ok(connected) = connect(&req.endpoint, None, req.connect_timeout).await else {
        return false;
    };
    let name = req.tls_name.clone().unwrap_or_else(|| match &req.endpoint {
        Endpoint::Tcp { host, .. } => host.clone(),
        Endpoint::Unix(_) => req.host_header.clone(),
    });
    let policy = TlsPolicy {
        verify: false,
        extra_roots: Vec::new(),
    };
    matches!(
        tokio::time::timeout(
            req.response_timeout,
            handshake(connected.io, &name, &policy)
        )
        .await,
        Ok(Ok(_))
    )
}

/// A FastCGI exchange over `io`, and the question whether the target speaks HTTP
/// instead ([`speaks_http`]) for one without a byte of answer. The question goes out
/// on its own connection once the exchange has been silent for half the response
/// timeout, alongside it: an HTTP head then is `protocol_mismatch` at once, and a
/// peer silent to both costs a little over one response timeout, not two in turn.
/// An exchange answered in time asks nothing more.
async fn fastcgi_or_http(mut io: Box<dyn Io>, req: &ProbeRequest, limits: HeadLimits) -> Exchanged {
    let timeout = req.response_timeout;
    let started = tokio::time::Instant::now();
    let asked_at = started + timeout / 2;
    // The question waits a quarter timeout past the exchange's end: a server that
    // serves one connection at a time reads it only once the exchange has closed.
    let question = async {
        tokio::time::sleep_until(asked_at).await;
        speaks_http(req, timeout / 2 + timeout / 4).await
    };
    tokio::pin!(question);
    let mut asked_in_vain = false;
    let exchanged = {
        let exchange = fastcgi_exchange(io.as_mut(), req, limits);
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                done = &mut exchange => break done,
                status = &mut question, if !asked_in_vain => match status {
                    Some(status) => {
                        let silent = format!("in {} ms", started.elapsed().as_millis());
                        return Err((http_peer(&silent, Phase::Response, status), 0));
                    }
                    None => asked_in_vain = true,
                },
            }
        }
    };
    drop(io);
    let Err((failure, 0)) = &exchanged else {
        return exchanged;
    };
    let silent = matches!(
        failure.outcome,
        Outcome::Timeout | Outcome::Reset | Outcome::PrematureClose
    );
    let status = if !silent || asked_in_vain {
        None
    } else if tokio::time::Instant::now() < asked_at {
        // Closed before the question went out: ask now, with the whole timeout.
        speaks_http(req, timeout).await
    } else {
        question.await
    };
    match status {
        Some(status) => {
            let silent = format!("({})", failure.outcome);
            Err((http_peer(&silent, failure.phase, status), 0))
        }
        None => exchanged,
    }
}

/// The `protocol_mismatch` of a FastCGI target that answered an HTTP request instead.
fn http_peer(silent: &str, phase: Phase, status: u16) -> Failure {
    Failure::new(
        Outcome::ProtocolMismatch,
        phase,
        format!("http_peer: FastCGI got no answer {silent} and an HTTP request gets HTTP {status}"),
    )
}

/// The status an HTTP request gets from the target within `within`: asked when a
/// FastCGI request got no byte of answer, the way an HTTP server that reads its
/// request line up to a newline (Python's http.server, gunicorn, Go's net/http)
/// waits on FastCGI's binary records until the proxy gives up. `None` when it
/// answers no HTTP head in time.
async fn speaks_http(req: &ProbeRequest, within: Duration) -> Option<u16> {
    let ask = async {
        let mut connected = connect(&req.endpoint, None, req.connect_timeout)
            .await
            .ok()?;
        let request = http_request(&req.path, &req.host_header, &req.user_agent);
        let read = http_exchange(connected.io.as_mut(), &request, req.limits())
            .await
            .ok()?;
        Some(read.head.status)
    };
    tokio::time::timeout(within, ask).await.ok().flatten()
}

type Exchanged = Result<(u16, usize, Vec<(String, String)>, String), (Failure, usize)>;

/// Turns nginx's "plain HTTP request was sent to HTTPS port" 400 into a
/// `protocol_mismatch`; passes every other head through.
async fn plain_to_tls_check(io: &mut dyn Io, read: HeadRead) -> Exchanged {
    let head = read.head;
    if head.status == 400 {
        let mut body = read.rest;
        let mut chunk = [0u8; 2048];
        while body.len() < 4096 {
            match tokio::time::timeout(Duration::from_millis(500), io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        if String::from_utf8_lossy(&body).contains("plain HTTP request was sent to HTTPS port") {
            let failure = Failure::new(
                Outcome::ProtocolMismatch,
                Phase::Response,
                "tls_peer: 400 The plain HTTP request was sent to HTTPS port",
            );
            return Err((failure, head.head_len));
        }
    }
    Ok((head.status, head.head_len, head.headers, String::new()))
}

/// Sends a FastCGI responder request and reads STDOUT up to the CGI head.
async fn fastcgi_exchange(io: &mut dyn Io, req: &ProbeRequest, limits: HeadLimits) -> Exchanged {
    let path = clean_token(&req.path);
    let host = clean_token(&req.host_header);
    let script = req.script_filename.clone().unwrap_or_else(|| path.clone());
    let (uri_path, query) = path.split_once('?').unwrap_or((&path, ""));
    let params = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", path.as_str()),
        ("SCRIPT_NAME", uri_path),
        ("SCRIPT_FILENAME", script.as_str()),
        ("DOCUMENT_URI", uri_path),
        ("QUERY_STRING", query),
        ("SERVER_NAME", host.as_str()),
        ("HTTP_HOST", host.as_str()),
        ("HTTP_USER_AGENT", "gw502-agent"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_SOFTWARE", "gw502-agent"),
    ];
    let request = encode_request(&params);
    match tokio::time::timeout(limits.timeout, io.write_all(&request)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err((Failure::io(Phase::Request, &e), 0)),
        Err(_) => return Err((Failure::timeout(Phase::Request), 0)),
    }
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut wire: Vec<u8> = Vec::new();
    let mut stdout: Vec<u8> = Vec::new();
    let mut stderr: Vec<u8> = Vec::new();
    let mut ended = false;
    let mut chunk = [0u8; 8192];
    loop {
        // drain complete records
        loop {
            match decode_record(&wire) {
                Ok((record, used)) => {
                    wire.drain(..used);
                    match record.kind {
                        RecordType::Stdout => stdout.extend_from_slice(&record.content),
                        RecordType::Stderr if stderr.len() < 512 => {
                            stderr.extend_from_slice(&record.content)
                        }
                        RecordType::EndRequest => ended = true,
                        _ => {}
                    }
                }
                Err(RecordError::Partial) => break,
                Err(RecordError::Version(v)) => {
                    let prefix = if wire.starts_with(b"HTTP/") {
                        "http_peer"
                    } else {
                        foreign_protocol(&wire).unwrap_or("not_http")
                    };
                    let failure = Failure::new(
                        Outcome::ProtocolMismatch,
                        Phase::Response,
                        format!(
                            "{prefix}: unsupported FastCGI protocol version: {v}: {}",
                            preview(&wire)
                        ),
                    );
                    return Err((failure, wire.len()));
                }
            }
        }
        match super::head::parse_cgi_head(&stdout) {
            Ok((headers, head_len)) if head_len > limits.max_head => {
                let _ = headers;
                let failure = Failure::new(
                    Outcome::HeaderTooBig,
                    Phase::Response,
                    format!("cgi head of {head_len} bytes exceeds {}", limits.max_head),
                );
                return Err((failure, head_len));
            }
            Ok((headers, head_len)) => {
                let status = cgi_status(&headers);
                let note = String::from_utf8_lossy(&stderr)
                    .trim()
                    .chars()
                    .take(200)
                    .collect();
                return Ok((status, head_len, headers, note));
            }
            Err(super::head::HeadError::Partial)
                if stdout.len() + wire.len() >= limits.read_cap =>
            {
                let failure = Failure::new(
                    Outcome::HeaderTooBig,
                    Phase::Response,
                    format!("no end of cgi head in {} bytes", stdout.len()),
                );
                return Err((failure, stdout.len()));
            }
            Err(super::head::HeadError::Partial) => {}
            Err(e) => {
                return Err((
                    Failure::new(Outcome::InvalidResponse, Phase::Response, e.to_string()),
                    stdout.len(),
                ));
            }
        }
        if ended {
            let detail = format!(
                "request ended without a complete cgi head ({} stdout bytes){}",
                stdout.len(),
                stderr_note(&stderr)
            );
            return Err((
                Failure::new(Outcome::PrematureClose, Phase::Response, detail),
                stdout.len(),
            ));
        }
        match tokio::time::timeout_at(deadline, io.read(&mut chunk)).await {
            Err(_) => return Err((Failure::timeout(Phase::Response), stdout.len())),
            Ok(Err(e)) => return Err((Failure::io(Phase::Response, &e), stdout.len())),
            Ok(Ok(0)) => {
                let detail = format!(
                    "upstream prematurely closed FastCGI stdout after {} bytes{}",
                    stdout.len(),
                    stderr_note(&stderr)
                );
                return Err((
                    Failure::new(Outcome::PrematureClose, Phase::Response, detail),
                    stdout.len(),
                ));
            }
            Ok(Ok(n)) => wire.extend_from_slice(&chunk[..n]),
        }
    }
}

fn stderr_note(stderr: &[u8]) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(
            "; stderr: {}",
            String::from_utf8_lossy(&stderr[..stderr.len().min(200)]).trim()
        )
    }
}
