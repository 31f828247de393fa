//! FastCGI records (FastCGI 1.0 spec): a pure encoder and decoder for the
//! handful of record types a probe needs, and the CGI head of a responder's
//! STDOUT.
//!
//! The probe sends a real responder request (BEGIN_REQUEST, PARAMS, an empty
//! STDIN) so a PHP-FPM pool answers it exactly as it answers nginx.

/// FastCGI protocol version 1.
pub const VERSION: u8 = 1;
/// The request id the probe uses.
pub const REQUEST_ID: u16 = 1;
/// Largest content of one record.
const MAX_CONTENT: usize = 0xffff;

/// FastCGI record types the probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// FCGI_BEGIN_REQUEST (1).
    BeginRequest,
    /// FCGI_END_REQUEST (3).
    EndRequest,
    /// FCGI_PARAMS (4).
    Params,
    /// FCGI_STDIN (5).
    Stdin,
    /// FCGI_STDOUT (6).
    Stdout,
    /// FCGI_STDERR (7).
    Stderr,
    /// Any other type, kept by number.
    Other(u8),
}

impl RecordType {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::BeginRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            other => Self::Other(other),
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Self::BeginRequest => 1,
            Self::EndRequest => 3,
            Self::Params => 4,
            Self::Stdin => 5,
            Self::Stdout => 6,
            Self::Stderr => 7,
            Self::Other(v) => v,
        }
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record type.
    pub kind: RecordType,
    /// Request id.
    pub request_id: u16,
    /// Content without padding.
    pub content: Vec<u8>,
}

/// Why bytes are not a FastCGI record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More bytes are needed.
    #[error("incomplete fastcgi record")]
    Partial,
    /// The version byte is not 1 (72, 'H', means an HTTP peer).
    #[error("unsupported fastcgi protocol version: {0}")]
    Version(u8),
}

/// Appends one record (with padding to 8 bytes) to `out`; content longer
/// than a record holds is split.
pub fn encode_record(out: &mut Vec<u8>, kind: RecordType, content: &[u8]) {
    let mut chunks: Vec<&[u8]> = content.chunks(MAX_CONTENT).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for chunk in chunks {
        let len = chunk.len();
        let padding = (8 - len % 8) % 8;
        out.extend_from_slice(&[VERSION, kind.as_u8()]);
        out.extend_from_slice(&REQUEST_ID.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[padding as u8, 0]);
        out.extend_from_slice(chunk);
        out.extend(std::iter::repeat_n(0u8, padding));
    }
}

/// Encodes name-value pairs as PARAMS content (1- or 4-byte lengths).
pub fn encode_params(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        for len in [name.len(), value.len()] {
            if len < 128 {
                out.push(len as u8);
            } else {
                out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Decodes name-value pairs from PARAMS content; stops at malformed input.
pub fn decode_params(mut buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn len(buf: &mut &[u8]) -> Option<usize> {
        let first = *buf.first()?;
        if first < 128 {
            *buf = &buf[1..];
            Some(first as usize)
        } else {
            let bytes: [u8; 4] = buf.get(..4)?.try_into().ok()?;
            *buf = &buf[4..];
            Some((u32::from_be_bytes(bytes) & 0x7fff_ffff) as usize)
        }
    }
    let mut pairs = Vec::new();
    while !buf.is_empty() {
        let (Some(n), Some(v)) = (len(&mut buf), len(&mut buf)) else {
            break;
        };
        let (Some(name), Some(value)) = (buf.get(..n), buf.get(n..n.saturating_add(v))) else {
            break;
        };
        pairs.push((name.to_vec(), value.to_vec()));
        buf = &buf[n + v..];
    }
    pairs
}

/// Decodes the record at the start of `buf`, returning it and its encoded length.
pub fn decode_record(buf: &[u8]) -> Result<(Record, usize), RecordError> {
    let Some(header) = buf.get(..8) else {
        return match buf.first() {
            Some(&v) if v != VERSION => Err(RecordError::Version(v)),
            _ => Err(RecordError::Partial),
        };
    };
    if header[0] != VERSION {
        return Err(RecordError::Version(header[0]));
    }
    let request_id = u16::from_be_bytes([header[2], header[3]]);
    let len = u16::from_be_bytes([header[4], header[5]]) as usize;
    let total = 8 + len + header[6] as usize;
    let content = buf.get(8..8 + len).ok_or(RecordError::Partial)?;
    if buf.len() < total {
        return Err(RecordError::Partial);
    }
    let record = Record {
        kind: RecordType::from_u8(header[1]),
        request_id,
        content: content.to_vec(),
    };
    Ok((record, total))
}

/// The whole probe request: BEGIN_REQUEST (responder, no keep-conn), PARAMS,
/// the empty PARAMS terminator and an empty STDIN.
pub fn encode_request(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    // role FCGI_RESPONDER (1), flags 0, 5 reserved bytes
    encode_record(
        &mut out,
        RecordType::BeginRequest,
        &[0, 1, 0, 0, 0, 0, 0, 0],
    );
    encode_record(&mut out, RecordType::Params, &encode_params(params));
    encode_record(&mut out, RecordType::Params, &[]);
    encode_record(&mut out, RecordType::Stdin, &[]);
    out
}

/// Status of a CGI head: the `Status:` header's code, or 200 when absent
/// (302 when only `Location:` is present, as in RFC 3875).
pub fn cgi_status(headers: &[(String, String)]) -> u16 {
    if let Some(status) = super::head::header(headers, "status") {
        return status
            .split_whitespace()
            .next()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
    }
    if super::head::header(headers, "location").is_some() {
        302
    } else {
        200
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_records_and_params() {
        let pairs = [("REQUEST_METHOD", "GET"), ("LONG", &*"x".repeat(300))];
        let request = encode_request(&pairs);
        let (begin, used) = decode_record(&request).unwrap();
        assert_eq!(begin.kind, RecordType::BeginRequest);
        assert_eq!(begin.content[1], 1);
        let (params, used2) = decode_record(&request[used..]).unwrap();
        assert_eq!(params.kind, RecordType::Params);
        let decoded = decode_params(&params.content);
        assert_eq!(decoded[0], (b"REQUEST_METHOD".to_vec(), b"GET".to_vec()));
        assert_eq!(decoded[1].1.len(), 300);
        let rest = &request[used + used2..];
        let (end_params, n) = decode_record(rest).unwrap();
        assert!(end_params.content.is_empty());
        let (stdin, n2) = decode_record(&rest[n..]).unwrap();
        assert_eq!(stdin.kind, RecordType::Stdin);
        assert_eq!(n + n2, rest.len());
        assert_eq!(request.len() % 8, 0);
    }

    #[test]
    fn http_bytes_are_version_72() {
        assert_eq!(
            decode_record(b"HTTP/1.1 400"),
            Err(RecordError::Version(b'H'))
        );
        assert_eq!(decode_record(b"H"), Err(RecordError::Version(72)));
        assert_eq!(
            decode_record(&[1, 6, 0, 1, 0, 5]),
            Err(RecordError::Partial)
        );
        assert_eq!(
            decode_record(&[1, 6, 0, 1, 0, 1, 7, 0, b'x']),
            Err(RecordError::Partial)
        );
    }

    #[test]
    fn cgi_status_rules() {
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_eq!(cgi_status(&h("Status", "404 Not Found")), 404);
        assert_eq!(cgi_status(&h("Content-type", "text/html")), 200);
        assert_eq!(cgi_status(&h("Location", "/x")), 302);
    }
}
