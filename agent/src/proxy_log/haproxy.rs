//! HAProxy log lines: `httplog`/`tcplog` request lines (termination state
//! `SC`, `sC`, `SH`, `sH`, `PH`, `sQ`, `<NOSRV>`), and the `has no server
//! available!` / `Server x/y is DOWN` event lines, with or without a syslog
//! prefix, classified into TAXONOMY causes.

use super::line::{ErrorLine, MAX_LINE, REFUSED, civil_ms, cut, month};

/// Parses one HAProxy log line (pure). `None` for lines of another shape.
pub fn parse_line(line: &str) -> Option<ErrorLine> {
    let line = cut(line.trim_end_matches(['\r', '\n']), MAX_LINE);
    // Strip a syslog prefix: `Nov 25 19:50:40 host haproxy[123]: `.
    let body = match line.find("]: ") {
        Some(i) if line[..i].contains("haproxy[") => &line[i + 3..],
        _ => line,
    };
    if let Some(i) = body.find("has no server available!") {
        let backend = body[..i]
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .trim_matches('\'');
        return Some(event(body, backend, "no_live_upstreams", 503));
    }
    if body.starts_with("Server ") && body.contains(" is DOWN") {
        let server = body["Server ".len()..].split(' ').next().unwrap_or("");
        let cause = if body.contains("Connection refused") {
            REFUSED
        } else {
            ""
        };
        let mut e = event(body, server, cause, 0);
        if cause.is_empty() {
            e.cause = None;
        }
        return Some(e);
    }
    request_line(body)
}

fn event(body: &str, upstream: &str, cause: &str, status: u16) -> ErrorLine {
    ErrorLine {
        level: "alert".to_string(),
        message: body.to_string(),
        upstream: Some(upstream.to_string()),
        cause: Some(cause.to_string()),
        status,
        ..ErrorLine::default()
    }
}

/// `client:port [date] frontend backend/server timers status bytes ... tsc ...`
fn request_line(body: &str) -> Option<ErrorLine> {
    let (client, rest) = body.split_once(" [")?;
    let (date, rest) = rest.split_once("] ")?;
    let words: Vec<&str> = rest.split_whitespace().take(12).collect();
    let (frontend, upstream, timers) = (words.first()?, words.get(1)?, words.get(2)?);
    let http = timers.split('/').count() == 5;
    let (status, tsc) = if http {
        (words.get(3)?.parse::<u16>().ok()?, words.get(7)?)
    } else {
        (0, words.get(4)?)
    };
    let server = upstream.split('/').nth(1).unwrap_or("");
    let state = tsc.get(..2).unwrap_or("");
    let cause = match state {
        "SC" if server == "<NOSRV>" => Some("no_live_upstreams"),
        "SC" => Some(REFUSED),
        "sC" => Some("firewall_blocked"),
        "SH" => Some("premature_close|connection_reset"),
        "sH" => Some("timeout"),
        "PH" => Some("invalid_header|header_too_big"),
        "sQ" => Some("saturated"),
        _ if status >= 500 && state.starts_with('-') => Some("upstream_returned_error"),
        _ => None,
    };
    Some(ErrorLine {
        at_ms: parse_date(date),
        level: if cause.is_some() { "error" } else { "info" }.to_string(),
        message: rest.to_string(),
        client: Some(client.to_string()),
        server: Some(frontend.to_string()),
        request: rest
            .split_once('"')
            .map(|(_, r)| r.trim_end_matches('"').to_string()),
        upstream: Some(upstream.to_string()),
        cause: cause.map(str::to_string),
        status,
        ..ErrorLine::default()
    })
}

/// `25/Nov/2026:19:50:40.478` read as UTC.
fn parse_date(s: &str) -> Option<i64> {
    let (day, rest) = s.split_once('/')?;
    let (mon, rest) = rest.split_once('/')?;
    let mut parts = rest.split([':', '.']);
    let mut next = || parts.next()?.parse::<u32>().ok();
    let (y, h, mi, sec) = (next()?, next()?, next()?, next()?);
    let ms = next().unwrap_or(0);
    civil_ms(i64::from(y), month(mon)?, day.parse().ok()?, h, mi, sec, ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/haproxy/haproxy.log");

    #[test]
    fn every_fixture_line_has_its_cause() {
        let expected: &[(Option<&str>, u16)] = &[
            (Some(REFUSED), 0),
            (Some("no_live_upstreams"), 503),
            (Some("no_live_upstreams"), 503),
            (Some(REFUSED), 503),
            (Some(REFUSED), 503),
            (Some("premature_close|connection_reset"), 502),
            (Some("premature_close|connection_reset"), 502),
            (Some("timeout"), 504),
            (Some("invalid_header|header_too_big"), 502),
            (Some("no_live_upstreams"), 503),
            (Some("saturated"), 503),
            (None, 200),
        ];
        let lines: Vec<&str> = FIXTURE.lines().collect();
        assert_eq!(lines.len(), expected.len());
        for (line, (cause, status)) in lines.iter().zip(expected) {
            let l = parse_line(line).unwrap_or_else(|| panic!("unparsed: {line}"));
            assert_eq!((l.cause.as_deref(), l.status), (*cause, *status), "{line}");
        }
        let l = parse_line(lines[5]).unwrap();
        assert_eq!(l.upstream.as_deref(), Some("premature/app1"));
        assert_eq!(l.server.as_deref(), Some("web"));
        assert_eq!(l.request.as_deref(), Some("GET /premature HTTP/1.1"));
        assert!(l.at_ms.is_some());
        assert_eq!(
            parse_line(lines[1]).unwrap().upstream.as_deref(),
            Some("down")
        );
    }

    #[test]
    fn syslog_prefix_tcplog_and_junk() {
        let l = parse_line("Nov 25 19:50:40 h haproxy[12]: 127.0.0.1:5 [25/Nov/2026:19:50:40.478] db db/pg1 0/-1/1001 0 sC 1/1/0/0/3 0/0").unwrap();
        assert_eq!(l.cause.as_deref(), Some("firewall_blocked"));
        for junk in [
            "",
            "[",
            "a [b] c",
            "x [25/Nov/2026:99:99:99.1] a b 1/2/3/4/5 zz",
            "\u{0}]: ]",
        ] {
            let _ = parse_line(junk);
        }
    }
}
