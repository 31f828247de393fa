//! Traefik's log lines, classified into TAXONOMY causes: the proxy error
//! handler's `502 Bad Gateway` / `504 Gateway Timeout` / `500 Internal
//! Server Error` with the Go error (`dial tcp ...: connect: connection
//! refused`, `EOF`, `net/http: timeout awaiting response headers`, `tls:
//! ...`, `x509: ...`), health-check failures and DOWN propagation, in both
//! log formats (`json` and the default `common` text), and the JSON access
//! log (`DownstreamStatus`, `OriginStatus`, `ServiceURL`, `RouterName`,
//! `RequestHost`). Shapes are those of `proxy/fixtures/traefik/`.

use serde_json::Value;

use gw502_vocab::Cause::{self, *};

use crate::line::{ErrorLine, MAX_LINE, NO_SOCKET, NOT_HTTP, REFUSED, UNIX_REFUSED, cut, text};

/// Traefik's own 502 with no error logged (the dial errors, EOF and resets
/// are logged at debug level only): refused, or closed or reset early.
pub const DIAL_OR_READ: &[Cause] = &[
    ServiceDown,
    WrongPort,
    NotListening,
    PrematureClose,
    ConnectionReset,
];
/// Traefik's own 500: a TLS failure or an answer that was not HTTP.
pub const TLS_OR_NOT_HTTP: &[Cause] = &[TlsMismatch, TlsCertificateError, ProtocolMismatch];

/// The bodies Traefik's own error handler writes (`http.StatusText`).
const OWN_BODIES: [(u16, u64); 3] = [(502, 11), (504, 15), (500, 21)];

/// Parses one Traefik log or JSON access-log line (pure). `None` for lines
/// of another shape.
pub fn parse_line(raw: &[u8]) -> Option<ErrorLine> {
    if raw.len() > MAX_LINE * 8 {
        return None;
    }
    let line = String::from_utf8_lossy(raw);
    let line = line.trim_end();
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).ok()?;
        if v.get("DownstreamStatus").is_some() {
            return Some(access_line(&v));
        }
        let message = v.get("message").or_else(|| v.get("msg"))?.as_str()?;
        let get = |k: &str| v.get(k).and_then(Value::as_str);
        return Some(log_line(
            get("time").and_then(rfc3339_ms),
            get("level").unwrap_or(""),
            get("caller").unwrap_or(""),
            message,
            get("error"),
            get("serviceName"),
            get("targetURL"),
        ));
    }
    text_line(&text(raw))
}

/// `2026-12-01T19:37:01Z DBG <caller> > <message> key=value ...`.
fn text_line(line: &str) -> Option<ErrorLine> {
    let mut words = line.splitn(4, ' ');
    let at = rfc3339_ms(words.next()?)?;
    let level = match words.next()? {
        "TRC" => "trace",
        "DBG" => "debug",
        "INF" => "info",
        "WRN" => "warn",
        "ERR" => "error",
        "FTL" => "fatal",
        "PNC" => "panic",
        _ => return None,
    };
    let caller = words.next()?;
    let rest = words.next()?.strip_prefix("> ").unwrap_or("");
    let (message, fields) = split_fields(rest);
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_str())
    };
    Some(log_line(
        Some(at),
        level,
        caller,
        message,
        field("error"),
        field("serviceName"),
        field("targetURL"),
    ))
}

/// Splits `message key=value key="quoted \"value\""` into the message and
/// its fields. The message ends where the first `key=` field starts.
fn split_fields(rest: &str) -> (&str, Vec<(&str, String)>) {
    let mut fields = Vec::new();
    let start = field_start(rest).unwrap_or(rest.len());
    let message = rest[..start].trim_end();
    let mut s = &rest[start..];
    while let Some((key, after)) = s.split_once('=') {
        let key = key.trim();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            out.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end.min(q.len())..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((key, value));
        s = next.trim_start();
    }
    (message, fields)
}

/// Where the first ` key=` (a word of letters then `=`) starts.
fn field_start(rest: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(eq) = rest[from..].find('=') {
        let eq = from + eq;
        let word_start = rest[..eq].rfind(' ').map(|i| i + 1).unwrap_or(0);
        let word = &rest[word_start..eq];
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(word_start);
        }
        from = eq + 1;
    }
    None
}

fn log_line(
    at_ms: Option<i64>,
    level: &str,
    caller: &str,
    message: &str,
    error: Option<&str>,
    service: Option<&str>,
    target: Option<&str>,
) -> ErrorLine {
    let mut line = ErrorLine {
        at_ms,
        level: level.to_string(),
        message: cut(
            &match error {
                Some(e) if !e.is_empty() => format!("{message}: {e}"),
                _ => message.to_string(),
            },
            MAX_LINE,
        )
        .to_string(),
        server: service.map(str::to_string),
        upstream: target.map(|t| crate::target::split_url(t).1.to_string()),
        ..ErrorLine::default()
    };
    let error = error.unwrap_or("");
    if caller.contains("proxy/httputil/proxy.go") {
        // "502 Bad Gateway": the status is the message's first word.
        let status = message
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (cause, implied) = classify(error);
        line.cause = cause;
        line.status = if status == 0 { implied } else { status };
        if line.upstream.is_none() {
            line.upstream = dial_target(error);
        }
    } else if caller.contains("healthcheck") && !error.is_empty() {
        line.cause = classify(error).0;
    } else if message.starts_with("Propagating new DOWN status") {
        line.cause = &[NoLiveUpstreams];
    }
    line
}

/// A JSON access-log line: the status sent, the server, and the cause the
/// line alone shows (Traefik's own 503 with no server chosen, its own 504).
fn access_line(v: &Value) -> ErrorLine {
    let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let status = u16::try_from(num("DownstreamStatus")).unwrap_or(0);
    let service_url = text("ServiceURL");
    let own_body = OWN_BODIES
        .iter()
        .any(|(s, len)| *s == status && num("DownstreamContentSize") == *len);
    let cause: &'static [Cause] = if status == 503
        && service_url.is_none()
        && num("OriginStatus") == 0
        && v.get("RouterName").is_some()
    {
        // Routed, but the load balancer had no server to pick.
        &[NoLiveUpstreams]
    } else if own_body && u64::from(status) == num("OriginStatus") {
        // Traefik's own error body, written by its proxy error handler: the
        // status says which family of Go errors it was (`ComputeStatusCode`).
        match status {
            504 => &[Timeout],
            502 => DIAL_OR_READ,
            _ => TLS_OR_NOT_HTTP,
        }
    } else {
        &[]
    };
    ErrorLine {
        at_ms: text("StartUTC").as_deref().and_then(rfc3339_ms),
        level: if status >= 500 { "error" } else { "info" }.to_string(),
        message: format!(
            "{status} {} {}",
            text("RouterName").unwrap_or_default(),
            text("ServiceName").unwrap_or_default()
        ),
        client: text("ClientHost"),
        // The signal's server is the request's host, not the router.
        request: text("RequestPath"),
        upstream: text("ServiceAddr")
            .or_else(|| service_url.map(|u| crate::target::split_url(&u).1.to_string())),
        host: text("RequestHost"),
        cause,
        status,
        ..ErrorLine::default()
    }
}

/// `dial tcp 127.0.0.1:4040: connect: ...` to `127.0.0.1:4040`.
fn dial_target(error: &str) -> Option<String> {
    let rest = error.split_once("dial ")?.1;
    let (_, rest) = rest.split_once(' ')?;
    let target = rest.split(": ").next()?;
    (!target.starts_with("lookup")).then(|| target.to_string())
}

/// The Go `net` / `net/http` / `crypto/tls` error of a failed round trip:
/// (cause candidates, the status Traefik answers with). Dial errors, EOF
/// and resets are 502, timeouts 504, TLS and malformed answers 500.
pub fn classify(error: &str) -> (&'static [Cause], u16) {
    let has = |s: &str| error.contains(s);
    let unix = has("dial unix");
    let dial = has("dial ");
    if has("no such host") || has("server misbehaving") || (has("lookup ") && dial) {
        (&[DnsFailure], 502)
    } else if has("connection refused") {
        (if unix { UNIX_REFUSED } else { REFUSED }, 502)
    } else if unix && has("no such file or directory") {
        (NO_SOCKET, 502)
    } else if has("permission denied") {
        (&[SocketPermissionDenied], 502)
    } else if has("no route to host") || has("network is unreachable") {
        (&[FirewallBlocked], 502)
    } else if has("i/o timeout") || has("timeout awaiting response headers") {
        // A dial that times out never connected: the path drops (TAXONOMY).
        (if dial { &[FirewallBlocked] } else { &[Timeout] }, 504)
    } else if has("x509:") || has("tls: failed to verify") {
        (&[TlsCertificateError], 500)
    } else if has("tls:") {
        (&[TlsMismatch], 500)
    } else if has("malformed HTTP") {
        (NOT_HTTP, 500)
    } else if has("header") && (has("too long") || has("too large")) {
        (&[HeaderTooBig], 500)
    } else if has("connection reset by peer") {
        (&[ConnectionReset], 502)
    } else if error == "EOF" || has("unexpected EOF") || has(": EOF") {
        (&[PrematureClose], 502)
    } else {
        (&[], 0)
    }
}

/// RFC 3339 (`2026-12-01T19:37:01Z`, fractions and offsets allowed) to
/// epoch ms.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_errors_classify_with_traefik_statuses() {
        assert_eq!(
            classify("dial tcp 127.0.0.1:1: connect: connection refused"),
            (REFUSED, 502)
        );
        assert_eq!(
            classify("dial tcp 10.0.0.9:80: i/o timeout"),
            (&[FirewallBlocked][..], 504)
        );
        assert_eq!(
            classify("dial tcp: lookup app.internal on 127.0.0.53:53: no such host").0,
            &[DnsFailure]
        );
        assert_eq!(
            classify("dial unix /run/app.sock: connect: no such file or directory").0,
            NO_SOCKET
        );
        assert_eq!(classify("context canceled"), (&[][..], 0));
        assert_eq!(dial_target("dial tcp: lookup x: no such host"), None);
    }

    #[test]
    fn text_fields_split_with_quotes() {
        let (m, f) =
            split_fields(r#"Health check failed. error="a \"b\" c" serviceName=down@file"#);
        assert_eq!(m, "Health check failed.");
        assert_eq!(f[0], ("error", r#"a "b" c"#.to_string()));
        assert_eq!(f[1], ("serviceName", "down@file".to_string()));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert!(parse_line(b"\xff{").is_none());
        assert!(parse_line(b"not a traefik line").is_none());
    }
}
