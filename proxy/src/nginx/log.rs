//! nginx error.log lines: `YYYY/MM/DD HH:MM:SS [level] PID#TID: *CID message
//! (errno: text) while action, client: .., server: .., request: "..",
//! upstream: "..", host: ".."`, parsed and classified into TAXONOMY §3 causes.

use gw502_vocab::Cause::{self, *};

use crate::line::{
    ErrorLine, MAX_LINE, NO_SOCKET, NOT_HTTP, REFUSED, UNIX_REFUSED, civil_ms, cut, errno_in,
};

/// The trailing fields nginx appends, in the order it writes them.
const KEYS: [&str; 8] = [
    "client",
    "server",
    "request",
    "subrequest",
    "upstream",
    "host",
    "referrer",
    "resolver",
];

/// Parses one nginx error.log line (pure). `None` when it does not start with
/// nginx's timestamp and level.
pub fn parse_error_line(line: &str) -> Option<ErrorLine> {
    let line = cut(line.trim_end_matches(['\r', '\n']), MAX_LINE);
    let at_ms = parse_time(line.get(..19)?)?;
    let rest = line.get(19..)?.strip_prefix(" [")?;
    let (level, rest) = rest.split_once("] ")?;
    if level.is_empty() || level.len() > 6 || !level.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut out = ErrorLine {
        at_ms: Some(at_ms),
        level: level.to_string(),
        ..ErrorLine::default()
    };
    let (pid, mut rest) = rest.split_once(": ").unwrap_or(("", rest));
    out.pid = pid.split('#').next().and_then(|p| p.parse().ok());
    if let Some(after) = rest.strip_prefix('*') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.connection = after[..digits].parse().ok();
        rest = after[digits..].trim_start();
    }
    let fields = field_positions(rest);
    let msg_end = fields.first().map(|(pos, _, _)| *pos).unwrap_or(rest.len());
    out.message = rest[..msg_end].to_string();
    for (i, (_, key, value_start)) in fields.iter().enumerate() {
        let end = fields.get(i + 1).map(|(p, _, _)| *p).unwrap_or(rest.len());
        let value = rest[*value_start..end].trim_matches('"').to_string();
        match *key {
            "client" => out.client = Some(value),
            "server" => out.server = Some(value),
            "request" => out.request = Some(value),
            "upstream" => out.upstream = Some(value),
            "host" => out.host = Some(value),
            _ => {}
        }
    }
    out.errno = errno_in(&out.message);
    out.action = out
        .message
        .rsplit_once(" while ")
        .map(|(_, a)| a.to_string());
    let (cause, status) = classify(&out);
    out.cause = cause;
    out.status = status;
    Some(out)
}

/// `(start of ", key: ", key, start of value)` for every known trailing field,
/// in order; a key must come after the previous one, as nginx writes them.
fn field_positions(rest: &str) -> Vec<(usize, &'static str, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    let mut next_key = 0;
    while next_key < KEYS.len() {
        let mut best: Option<(usize, usize)> = None;
        for (k, key) in KEYS.iter().enumerate().skip(next_key) {
            let pat = format!(", {key}: ");
            if let Some(i) = rest[from..].find(&pat)
                && best.is_none_or(|(b, _)| from + i < b)
            {
                best = Some((from + i, k));
            }
        }
        let Some((pos, k)) = best else { break };
        let value_start = pos + KEYS[k].len() + 4;
        out.push((pos, KEYS[k], value_start));
        // Quoted values may contain ", "; skip to their closing quote.
        from = if rest[value_start..].starts_with('"') {
            rest[value_start + 1..]
                .find("\", ")
                .map(|i| value_start + 1 + i + 1)
                .unwrap_or(rest.len())
        } else {
            value_start
        };
        next_key = k + 1;
    }
    out
}

/// `2026/11/25 19:50:15` read as UTC.
fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'/'
        || b[7] != b'/'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    civil_ms(
        i64::from(num(0..4)?),
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
        0,
    )
}

/// TAXONOMY §3 nginx rows: (cause candidates, implied status).
fn classify(l: &ErrorLine) -> (&'static [Cause], u16) {
    let m = l.message.as_str();
    let action = l.action.as_deref().unwrap_or("");
    let has = |s: &str| m.contains(s);
    let cause: &'static [Cause] = if l.level == "emerg" {
        return (&[ProxyConfigInvalid], 0);
    } else if has("no live upstreams") {
        &[NoLiveUpstreams]
    } else if has("could not be resolved") || has("no resolver defined") || action == "resolving" {
        &[DnsFailure]
    } else if has("upstream SSL certificate") {
        &[TlsCertificateError]
    } else if has("upstream timed out") {
        return match action {
            "connecting to upstream" => (&[FirewallBlocked], 504),
            _ => (&[Timeout], 504),
        };
    } else if has("SSL_do_handshake() failed") || action == "SSL handshaking to upstream" {
        &[TlsMismatch]
    } else if m.starts_with("connect() ") {
        let unix = m.starts_with("connect() to unix:");
        match l.errno {
            Some(111) if unix => UNIX_REFUSED,
            Some(111) => REFUSED,
            Some(2) => NO_SOCKET,
            Some(13) => &[SocketPermissionDenied],
            Some(11) => &[Saturated],
            Some(113) | Some(101) => &[FirewallBlocked],
            Some(110) => return (&[FirewallBlocked], 504),
            _ => return (&[], 0),
        }
    } else if has("unsupported FastCGI protocol version") {
        &[ProtocolMismatch]
    } else if has("no valid HTTP/1.0 header") {
        NOT_HTTP
    } else if has("too big header") {
        &[HeaderTooBig]
    } else if has("upstream sent invalid header")
        || has("upstream sent duplicate header")
        || has("\"Content-Length\" and \"Transfer-Encoding\"")
    {
        &[InvalidHeader]
    } else if has("invalid chunked response") {
        &[InvalidBody]
    } else if has("upstream prematurely closed") {
        if action == "reading upstream" {
            &[InvalidBody]
        } else {
            &[PrematureClose]
        }
    } else if matches!(l.errno, Some(104) | Some(32)) && action.contains("upstream") {
        &[ConnectionReset]
    } else {
        return (&[], 0);
    };
    (cause, 502)
}

#[cfg(test)]
mod tests;
