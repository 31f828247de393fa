//! The parsed shape of one proxy error-log line, shared by the nginx,
//! HAProxy, Apache and Caddy parsers, and the candidate cause sets they use.
//! A line's cause is one [`Cause`], or several candidates when the line alone
//! cannot decide (the collector decides with sockets and systemd evidence).

use gw502_vocab::Cause::{self, *};

/// TCP connect refused: nothing listens where the proxy connects.
pub const REFUSED: &[Cause] = &[ServiceDown, WrongPort, NotListening];
/// Unix socket exists but nothing accepts on it.
pub const UNIX_REFUSED: &[Cause] = &[ServiceDown, NotListening];
/// Unix socket path missing.
pub const NO_SOCKET: &[Cause] = &[WrongSocketPath, ServiceDown];
/// The upstream answered with something that is not HTTP.
pub const NOT_HTTP: &[Cause] = &[ProtocolMismatch, TlsMismatch];
/// The connection to the upstream was dropped before a full header.
pub const CLOSED_OR_RESET: &[Cause] = &[PrematureClose, ConnectionReset];
/// The proxy rejected the response header.
pub const BAD_HEADER: &[Cause] = &[InvalidHeader, HeaderTooBig];

/// The longest line parsed; longer lines are cut first.
pub const MAX_LINE: usize = 8 * 1024;

/// One error-log line, parsed. Fields the line does not carry are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorLine {
    /// When it was logged, epoch ms. Zone-less times (nginx, HAProxy,
    /// Apache: [`crate::Proxy::local_time`]) are read as UTC; the agent
    /// converts them with the host's zone rules.
    pub at_ms: Option<i64>,
    /// Severity as the proxy wrote it (`error`, `crit`, `emerg`, `warn`, ...).
    pub level: String,
    /// Process id of the logging worker.
    pub pid: Option<u32>,
    /// nginx connection id (`*CID`).
    pub connection: Option<u64>,
    /// The message without the trailing key/value fields.
    pub message: String,
    /// The OS error number, e.g. 111.
    pub errno: Option<i32>,
    /// What the proxy was doing: `connecting to upstream`, ...
    pub action: Option<String>,
    /// Client address.
    pub client: Option<String>,
    /// Virtual server name.
    pub server: Option<String>,
    /// The request line.
    pub request: Option<String>,
    /// The upstream as logged (`http://127.0.0.1:3000/x`, `backend/server`).
    pub upstream: Option<String>,
    /// The `Host` of the request.
    pub host: Option<String>,
    /// The cause, or its candidates in order; empty for lines that are no
    /// 5xx evidence. On the wire: [`Cause::join_set`].
    pub cause: &'static [Cause],
    /// Status the proxy answered with, as logged or implied (0 unknown).
    pub status: u16,
}

/// The text of a raw log line, cut to [`MAX_LINE`] bytes first, invalid
/// UTF-8 replaced.
pub fn text(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE)])
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Finds the first `(N: text)` or `(N)text` errno in a message.
pub fn errno_in(message: &str) -> Option<i32> {
    let bytes = message.as_bytes();
    let mut from = 0;
    while let Some(i) = message[from..].find('(') {
        let start = from + i + 1;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0
            && digits < 6
            && let Ok(n) = message[start..start + digits].parse()
        {
            return Some(n);
        }
        from = start;
    }
    None
}

/// Days since the epoch for a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch ms of a zone-less civil time read as UTC; `None` when out of range.
pub fn civil_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 || ms > 999
    {
        return None;
    }
    if !(1970..=9999).contains(&y) {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s);
    Some(secs * 1000 + i64::from(ms))
}

/// Month number of an English three-letter abbreviation.
pub fn month(abbr: &str) -> Option<u32> {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    M.iter().position(|m| *m == abbr).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_and_time_helpers() {
        assert_eq!(
            errno_in("connect() failed (111: Connection refused) while"),
            Some(111)
        );
        assert_eq!(errno_in("(13)Permission denied: AH02454"), Some(13));
        assert_eq!(errno_in("upstream (x) sent"), None);
        assert_eq!(civil_ms(1970, 1, 1, 0, 0, 0, 0), Some(0));
        assert_eq!(
            civil_ms(2026, 11, 25, 19, 50, 15, 0),
            Some(1_795_636_215_000)
        );
        assert_eq!(civil_ms(2026, 13, 1, 0, 0, 0, 0), None);
        assert_eq!(month("Nov"), Some(11));
        assert_eq!(cut("héllo", 2), "h");
    }
}
