//! A minimal, read-only client of the Docker Engine API over its unix socket
//! (Podman's Docker-compatible service answers the same calls).
//!
//! The agent only ever sends `GET` requests, one per connection, as HTTP/1.0:
//! the engine (Go's `net/http`) then answers without chunked encoding and
//! closes the connection after the body, so reading to the end is the whole
//! protocol and no HTTP client stack is needed. Every read is bounded in
//! bytes and time. Paths are unversioned so the engine answers in its own
//! API version; the fields read are stable across Docker 20.10 to 27 and
//! Podman 4.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Why a call to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The socket does not exist: no engine on this host, or another path.
    #[error("no engine socket at {path}")]
    Missing {
        /// The socket path tried.
        path: PathBuf,
    },
    /// The agent's user may not connect (the socket is root:docker 0660).
    #[error(
        "permission denied on {path}: the agent needs the socket's group (see deploy/README.md, containers)"
    )]
    Denied {
        /// The socket path tried.
        path: PathBuf,
    },
    /// The socket exists but nothing accepts on it (engine stopped).
    #[error("engine at {path} refuses connections (is it running?)")]
    Refused {
        /// The socket path tried.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("GET {request} on {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The request path.
        request: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The call took longer than the timeout.
    #[error("GET {request}: no complete answer within {millis} ms")]
    Timeout {
        /// The request path.
        request: String,
        /// The timeout.
        millis: u128,
    },
    /// The engine answered with an error status.
    #[error("GET {request} answered {status}: {message}")]
    Status {
        /// The request path.
        request: String,
        /// HTTP status.
        status: u16,
        /// The engine's `message`, or the start of the body.
        message: String,
    },
    /// The answer is not an HTTP response, or is larger than allowed.
    #[error("GET {request}: {reason}")]
    Malformed {
        /// The request path.
        request: String,
        /// What is wrong.
        reason: String,
    },
}

/// The engine's API socket with the bounds of one call.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Unix socket path.
    pub socket: PathBuf,
    /// Bound on one call.
    pub timeout: Duration,
    /// Largest response read, head included.
    pub max_bytes: usize,
}

impl Engine {
    /// An engine at `socket`.
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            socket: socket.into(),
            timeout,
            max_bytes,
        }
    }

    /// `GET request` (a path with its query), returning the body of a 2xx answer.
    pub async fn get(&self, request: &str) -> Result<Vec<u8>, EngineError> {
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::Timeout {
                request: request.to_string(),
                millis: self.timeout.as_millis(),
            }),
        }
    }

    async fn exchange(&self, request: &str) -> Result<Vec<u8>, EngineError> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| connect_error(&self.socket, request, e))?;
        let io = |source| EngineError::Io {
            path: self.socket.clone(),
            request: request.to_string(),
            source,
        };
        let head = format!(
            "GET {request} HTTP/1.0\r\nHost: docker\r\nUser-Agent: gw502-agent\r\nAccept: application/json\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        let limit = u64::try_from(self.max_bytes).unwrap_or(u64::MAX) + 1;
        (&mut stream)
            .take(limit)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        if raw.len() > self.max_bytes {
            return Err(EngineError::Malformed {
                request: request.to_string(),
                reason: format!("answer larger than {} bytes", self.max_bytes),
            });
        }
        parse_response(request, &raw)
    }
}

pub(crate) fn connect_error(path: &Path, request: &str, e: std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    match e.kind() {
        ErrorKind::NotFound => EngineError::Missing { path },
        ErrorKind::PermissionDenied => EngineError::Denied { path },
        ErrorKind::ConnectionRefused => EngineError::Refused { path },
        _ => EngineError::Io {
            path,
            request: request.to_string(),
            source: e,
        },
    }
}

/// Splits a whole HTTP/1.x answer into status and body; a non-2xx status
/// becomes [`EngineError::Status`] with the engine's `message`.
pub fn parse_response(request: &str, raw: &[u8]) -> Result<Vec<u8>, EngineError> {
    let malformed = |reason: String| EngineError::Malformed {
        request: request.to_string(),
        reason,
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(malformed("answer ended inside its head".into()));
        }
        Err(e) => return Err(malformed(format!("not an HTTP answer: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let chunked = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value
                .to_ascii_lowercase()
                .windows(7)
                .any(|w| w == b"chunked")
    });
    if chunked {
        return Err(malformed("chunked answer to an HTTP/1.0 request".into()));
    }
    let mut body = raw[head_len..].to_vec();
    if let Some(length) = length {
        if body.len() < length {
            return Err(malformed(format!(
                "body cut short: {} of {length} bytes",
                body.len()
            )));
        }
        body.truncate(length);
    }
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(EngineError::Status {
            request: request.to_string(),
            status,
            message: message.trim().to_string(),
        });
    }
    Ok(body)
}

/// Whether `id` is a container id the engine gave (hex), safe in a path.
pub fn is_container_id(id: &str) -> bool {
    (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}
