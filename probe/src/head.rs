//! Reading an HTTP/1.x response head: the pure parser (a fuzz target) and the
//! bounded reader the probes use.
//!
//! The parser never allocates more than the head it is given and reports
//! whether it needs more bytes, so the reader can stop at a byte cap and say
//! `header_too_big` with the number of bytes seen, like nginx's
//! `proxy_buffer_size` check.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::outcome::{Failure, Outcome, Phase};

/// Most headers one head may carry before it counts as too big.
const MAX_HEADERS: usize = 256;

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase (lossy UTF-8).
    pub reason: String,
    /// Header names and values in order (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// Bytes of the head including the final empty line.
    pub head_len: usize,
}

impl ResponseHead {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// First value of header `name` (case-insensitive) in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a buffer is not (yet) a response head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head is incomplete: read more bytes.
    #[error("incomplete response head")]
    Partial,
    /// The bytes are not a valid HTTP/1.x response head.
    #[error("invalid response head: {0}")]
    Invalid(String),
    /// More header lines than the parser accepts.
    #[error("response head has more than {MAX_HEADERS} headers")]
    TooBig,
}

/// Parses an HTTP/1.x response head from the start of `buf`.
pub fn parse_response_head(buf: &[u8]) -> Result<ResponseHead, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => Ok(ResponseHead {
            status: response.code.unwrap_or(0),
            reason: response.reason.unwrap_or("").to_string(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            head_len,
        }),
        Ok(httparse::Status::Partial) => Err(HeadError::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooBig),
        Err(e) => Err(HeadError::Invalid(e.to_string())),
    }
}

/// Parses a CGI response head (header lines without a status line, as in a
/// FastCGI STDOUT stream), returning the headers and the head length.
pub fn parse_cgi_head(buf: &[u8]) -> Result<(Vec<(String, String)>, usize), HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, headers))) => Ok((
            headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            len,
        )),
        Ok(httparse::Status::Partial) => Err(HeadError::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooBig),
        Err(e) => Err(HeadError::Invalid(e.to_string())),
    }
}

/// Names the protocol of bytes that are not an HTTP response, as a
/// `protocol_mismatch` detail prefix, or `None` when they look like broken HTTP.
pub fn foreign_protocol(buf: &[u8]) -> Option<&'static str> {
    match buf {
        [0x15, 0x03, ..] | [0x16, 0x03, ..] => Some("tls_peer"),
        _ if buf.starts_with(b"HTTP/") || b"HTTP/".starts_with(buf) => None,
        _ => Some("not_http"),
    }
}

/// Byte and time bounds of one head read.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// A head larger than this is `header_too_big` (default 8 KiB, nginx's
    /// `proxy_buffer_size` on x86-64 is 4-8 KiB).
    pub max_head: usize,
    /// Bytes read at most while looking for the end of the head.
    pub read_cap: usize,
    /// Time allowed for the whole head.
    pub timeout: Duration,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head: 8 * 1024,
            read_cap: 64 * 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A head read from a stream, with the bytes after it that came in the same reads.
#[derive(Debug, Clone)]
pub struct HeadRead {
    /// The parsed head.
    pub head: ResponseHead,
    /// Body bytes already read past the head.
    pub rest: Vec<u8>,
}

/// Reads one response head from `io`, skipping interim 1xx heads.
///
/// The error carries `header_bytes` (how much was read) for `header_too_big`.
pub async fn read_head<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    limits: HeadLimits,
) -> Result<HeadRead, (Failure, usize)> {
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match parse_response_head(&buf) {
            Ok(head) if (100..200).contains(&head.status) && head.status != 101 => {
                buf.drain(..head.head_len);
                continue;
            }
            Ok(head) if head.head_len > limits.max_head => {
                let len = head.head_len;
                return Err((too_big(len, limits.max_head), len));
            }
            Ok(head) => {
                let rest = buf[head.head_len..].to_vec();
                return Ok(HeadRead { head, rest });
            }
            Err(HeadError::TooBig) => return Err((too_big(buf.len(), limits.max_head), buf.len())),
            Err(HeadError::Invalid(why)) => {
                let failure = match foreign_protocol(&buf) {
                    Some(prefix) => Failure::new(
                        Outcome::ProtocolMismatch,
                        Phase::Response,
                        format!("{prefix}: {}", preview(&buf)),
                    ),
                    None => Failure::new(Outcome::InvalidResponse, Phase::Response, why),
                };
                return Err((failure, buf.len()));
            }
            Err(HeadError::Partial) if buf.len() >= limits.read_cap => {
                return Err((too_big(buf.len(), limits.max_head), buf.len()));
            }
            Err(HeadError::Partial) => {}
        }
        let want = chunk.len().min(limits.read_cap - buf.len());
        let read = tokio::time::timeout_at(deadline, io.read(&mut chunk[..want])).await;
        match read {
            Err(_) => return Err((Failure::timeout(Phase::Response), buf.len())),
            Ok(Err(e)) => return Err((Failure::io(Phase::Response, &e), buf.len())),
            Ok(Ok(0)) => {
                let detail = if buf.is_empty() {
                    "closed before sending a byte".to_string()
                } else {
                    format!("closed after {} bytes of an incomplete head", buf.len())
                };
                let failure = Failure::new(Outcome::PrematureClose, Phase::Response, detail);
                return Err((failure, buf.len()));
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn too_big(len: usize, max: usize) -> Failure {
    Failure::new(
        Outcome::HeaderTooBig,
        Phase::Response,
        format!("response head of at least {len} bytes exceeds {max}"),
    )
}

/// A short printable preview of foreign bytes for a detail string.
pub fn preview(buf: &[u8]) -> String {
    let head = &buf[..buf.len().min(48)];
    head.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_complete_head() {
        let raw = b"HTTP/1.1 502 Bad Gateway\r\nServer: nginx\r\nContent-Length: 3\r\n\r\nabc";
        let head = parse_response_head(raw).unwrap();
        assert_eq!(head.status, 502);
        assert_eq!(head.reason, "Bad Gateway");
        assert_eq!(head.header("server"), Some("nginx"));
        assert_eq!(head.head_len, raw.len() - 3);
    }

    #[test]
    fn partial_invalid_and_too_many() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nA: b"),
            Err(HeadError::Partial)
        );
        assert_eq!(parse_response_head(b""), Err(HeadError::Partial));
        assert!(matches!(
            parse_response_head(b"SSH-2.0-OpenSSH\r\n"),
            Err(HeadError::Invalid(_))
        ));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..300 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_response_head(&many), Err(HeadError::TooBig));
    }

    #[test]
    fn foreign_protocols() {
        assert_eq!(
            foreign_protocol(&[0x15, 0x03, 0x01, 0x00, 0x02]),
            Some("tls_peer")
        );
        assert_eq!(foreign_protocol(b"HTTP/1.1 200"), None);
        assert_eq!(foreign_protocol(b"HTT"), None);
        assert_eq!(foreign_protocol(b"\x01\x06\x00\x01"), Some("not_http"));
    }

    #[tokio::test]
    async fn reader_skips_continue_and_keeps_the_rest() {
        let raw: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let mut io = raw;
        let read = read_head(&mut io, HeadLimits::default()).await.unwrap();
        assert_eq!(read.head.status, 200);
        assert_eq!(read.rest, b"body");
    }

    #[tokio::test]
    async fn reader_reports_size_and_close() {
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        big.extend_from_slice(format!("X-Big: {}\r\n\r\n", "a".repeat(9000)).as_bytes());
        let mut io = big.as_slice();
        let (failure, bytes) = read_head(&mut io, HeadLimits::default()).await.unwrap_err();
        assert_eq!(failure.outcome, Outcome::HeaderTooBig);
        assert!(bytes > 9000);

        let mut io: &[u8] = b"HTTP/1.1 200 OK\r\n";
        let (failure, _) = read_head(&mut io, HeadLimits::default()).await.unwrap_err();
        assert_eq!(failure.outcome, Outcome::PrematureClose);
    }
}
