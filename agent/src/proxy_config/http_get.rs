//! A bounded HTTP/1.1 GET to a proxy's own API on loopback (Traefik's
//! `/api/http/*`, Envoy's admin `/clusters` and `/config_dump`): one
//! request per connection, a timeout on the whole exchange, a cap on the
//! body, and chunked bodies decoded. Only loopback addresses are accepted;
//! the agent never asks anything off the host.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes read from one answer.
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Why an API answer could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The address is not on loopback.
    #[error("{addr} is not a loopback address")]
    NotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// Connecting, writing or reading failed.
    #[error("{addr}{path}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The exchange took longer than allowed.
    #[error("{addr}{path}: no answer in {timeout:?}")]
    Timeout {
        /// The address.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// The bound.
        timeout: Duration,
    },
    /// The answer was not a 200 with a readable body.
    #[error("{addr}{path}: {reason}")]
    Answer {
        /// The address.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// GETs `path` from `addr` and returns the body of a 200 answer.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    if !addr.ip().is_loopback() {
        return Err(ApiError::NotLoopback { addr });
    }
    let io = |source| ApiError::Io {
        addr,
        path: path.to_string(),
        source,
    };
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(io)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nUser-Agent: gw502-agent\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(MAX_BODY as u64 + 64 * 1024)
            .read_to_end(&mut raw)
            .await
            .map_err(io)?;
        Ok::<_, ApiError>(raw)
    };
    let raw = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ApiError::Timeout {
            addr,
            path: path.to_string(),
            timeout,
        })??;
    body(&raw).map_err(|reason| ApiError::Answer {
        addr,
        path: path.to_string(),
        reason,
    })
}

/// The body of a raw 200 answer (pure).
fn body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let len = match head.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("answer cut before its header ended".into()),
        Err(e) => return Err(format!("not an HTTP answer: {e}")),
    };
    if head.code != Some(200) {
        return Err(format!("status {}", head.code.unwrap_or(0)));
    }
    let chunked = head.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let rest = &raw[len..];
    if chunked {
        dechunk(rest)
    } else {
        Ok(rest.to_vec())
    }
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line cut")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size || out.len() + size > MAX_BODY {
            return Err("chunk cut or body too big".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_bodies() {
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]").unwrap(),
            b"[]"
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n1;x\r\n]\r\n0\r\n\r\n")
                .unwrap(),
            b"[]"
        );
        assert_eq!(
            body(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(),
            "status 404"
        );
        assert!(body(b"SSH-2.0\r\n").is_err());
    }

    #[tokio::test]
    async fn only_loopback_is_asked() {
        let addr: SocketAddr = "192.0.2.9:8080".parse().unwrap();
        let err = get(addr, "/api/http/routers", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::NotLoopback { .. }), "{err}");
    }
}
