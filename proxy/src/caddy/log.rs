//! Caddy's JSON error log (`"logger":"http.log.error"`): the dial error text
//! (`dial tcp 127.0.0.1:4040: connect: connection refused`), status and
//! request host, classified into TAXONOMY causes.

use serde_json::Value;

use gw502_vocab::Cause::{self, *};

use crate::line::{ErrorLine, MAX_LINE, NO_SOCKET, NOT_HTTP, REFUSED, UNIX_REFUSED};

/// Parses one Caddy JSON log line (pure). `None` for lines that are not
/// JSON objects from an `http.log.error` logger.
pub fn parse_line(line: &[u8]) -> Option<ErrorLine> {
    if line.len() > MAX_LINE * 8 {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    let logger = v.get("logger")?.as_str()?;
    if !logger.starts_with("http.log.error") {
        return None;
    }
    let msg = v.get("msg").and_then(Value::as_str).unwrap_or("");
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let logged = v
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let (cause, implied) = classify(msg);
    Some(ErrorLine {
        at_ms: v
            .get("ts")
            .and_then(Value::as_f64)
            .map(|t| (t * 1000.0) as i64),
        level: v
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_string(),
        message: crate::line::cut(msg, MAX_LINE).to_string(),
        client: text("/request/remote_ip"),
        host: text("/request/host"),
        request: text("/request/uri"),
        upstream: dial_target(msg),
        cause,
        status: logged.unwrap_or(implied),
        ..ErrorLine::default()
    })
}

/// `dial tcp 127.0.0.1:4040: connect: ...` to `127.0.0.1:4040`.
fn dial_target(msg: &str) -> Option<String> {
    let rest = msg.split_once("dial ")?.1;
    let (_, rest) = rest.split_once(' ')?;
    Some(rest.split(": ").next()?.to_string())
}

/// Caddy's dial and round-trip errors: (cause candidates, implied status).
fn classify(msg: &str) -> (&'static [Cause], u16) {
    let has = |s: &str| msg.contains(s);
    let unix = has("dial unix");
    let cause: &'static [Cause] = if has("no upstreams available") {
        return (&[NoLiveUpstreams], 503);
    } else if has("connection refused") {
        if unix { UNIX_REFUSED } else { REFUSED }
    } else if has("no such host") || has("server misbehaving") {
        &[DnsFailure]
    } else if unix && has("no such file or directory") {
        NO_SOCKET
    } else if has("permission denied") {
        &[SocketPermissionDenied]
    } else if has("i/o timeout")
        || has("timeout awaiting response headers")
        || has("deadline exceeded")
    {
        // A dial that times out never connected: the path drops (TAXONOMY).
        let connect = has("dial ");
        return (
            if connect {
                &[FirewallBlocked]
            } else {
                &[Timeout]
            },
            504,
        );
    } else if has("x509:") || has("tls: failed to verify") {
        &[TlsCertificateError]
    } else if has("tls:") {
        &[TlsMismatch]
    } else if has("malformed HTTP") {
        NOT_HTTP
    } else if has("connection reset by peer") {
        &[ConnectionReset]
    } else if has("EOF") {
        &[PrematureClose]
    } else {
        return (&[], 0);
    };
    (cause, 502)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape of Caddy 2 `http.log.error` entries (TAXONOMY §3); caddy is not
    // installed on the build host, so this line is not captured.
    const REFUSED_LINE: &str = r#"{"level":"error","ts":1795636215.5,"logger":"http.log.error","msg":"dial tcp 127.0.0.1:4040: connect: connection refused","request":{"remote_ip":"127.0.0.1","proto":"HTTP/1.1","method":"GET","host":"shop.test","uri":"/"},"duration":0.001,"status":502,"err_id":"x","err_trace":"reverseproxy.statusError (reverseproxy.go:1269)"}"#;

    #[test]
    fn refused_and_other_dial_errors() {
        let l = parse_line(REFUSED_LINE.as_bytes()).unwrap();
        assert_eq!(l.cause, REFUSED);
        assert_eq!(l.status, 502);
        assert_eq!(l.upstream.as_deref(), Some("127.0.0.1:4040"));
        assert_eq!(l.host.as_deref(), Some("shop.test"));
        assert_eq!(l.at_ms, Some(1_795_636_215_500));
        assert_eq!(
            classify("dial unix /run/x.sock: connect: no such file or directory").0,
            NO_SOCKET
        );
        assert_eq!(
            classify("dial tcp 10.0.0.1:80: i/o timeout"),
            (&[FirewallBlocked][..], 504)
        );
        assert_eq!(
            classify("no upstreams available"),
            (&[NoLiveUpstreams][..], 503)
        );
        assert!(parse_line(br#"{"logger":"http.log.access"}"#).is_none());
        assert!(parse_line(b"\xff\xfe{").is_none());
    }
}
