//! HAProxy log lines: `httplog`/`tcplog` request lines (termination state
//! `SC`, `sC`, `SH`, `sH`, `PH`, `sQ`, `<NOSRV>`), and the `has no server
//! available!` / `Server x/y is DOWN` / `is going DOWN for maintenance (DNS NX
//! status)` event lines, with or without a syslog
//! prefix, classified into TAXONOMY causes.

use gw502_vocab::Cause::{self, *};

use crate::line::{
    BAD_HEADER, CLOSED_OR_RESET, ErrorLine, MAX_LINE, REFUSED, civil_ms, cut, month,
};

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
        return Some(event(body, backend, &[NoLiveUpstreams], 503));
    }
    // `Server app/app1 is going DOWN for maintenance (DNS NX status). ...`: the
    // server's name stopped resolving (NX, timeout or refused) and it was taken out.
    if body.starts_with("Server ")
        && body.contains(" is going DOWN for maintenance")
        && body.contains("(DNS ")
    {
        let server = body["Server ".len()..].split(' ').next().unwrap_or("");
        return Some(event(body, server, &[DnsFailure], 0));
    }
    if body.starts_with("Server ") && body.contains(" is DOWN") {
        let server = body["Server ".len()..].split(' ').next().unwrap_or("");
        let cause = if body.contains("Connection refused") {
            REFUSED
        } else {
            &[]
        };
        return Some(event(body, server, cause, 0));
    }
    request_line(body)
}

fn event(body: &str, upstream: &str, cause: &'static [Cause], status: u16) -> ErrorLine {
    ErrorLine {
        level: "alert".to_string(),
        message: body.to_string(),
        upstream: Some(upstream.to_string()),
        cause,
        status,
        ..ErrorLine::default()
    }
}

/// `client:port [date] frontend backend/server timers status bytes ... tsc ...`, stamped
/// when the request ended.
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
    // The date is when HAProxy accepted the connection, the line is written when the
    // request ends: the last timer (`Ta` of httplog, `Tt` of tcplog, `+` with
    // `logasap`, -1 when it never ended) later. Its failure showed then: a refused
    // connect, retried three times a second apart, ends 3 s after it began.
    let took = timers
        .rsplit('/')
        .next()
        .and_then(|t| t.trim_start_matches('+').parse::<i64>().ok())
        .filter(|ms| *ms > 0)
        .unwrap_or(0);
    let server = upstream.split('/').nth(1).unwrap_or("");
    let state = tsc.get(..2).unwrap_or("");
    let cause: &'static [Cause] = match state {
        "SC" if server == "<NOSRV>" => &[NoLiveUpstreams],
        "SC" => REFUSED,
        "sC" => &[FirewallBlocked],
        "SH" => CLOSED_OR_RESET,
        "sH" => &[Timeout],
        "PH" => BAD_HEADER,
        "sQ" => &[Saturated],
        _ if status >= 500 && state.starts_with('-') => &[UpstreamReturnedError],
        _ => &[],
    };
    Some(ErrorLine {
        at_ms: parse_date(date).map(|accepted| accepted + took),
        level: if cause.is_empty() { "info" } else { "error" }.to_string(),
        message: rest.to_string(),
        client: Some(client.to_string()),
        server: Some(frontend.to_string()),
        request: rest
            .split_once('"')
            .map(|(_, r)| r.trim_end_matches('"').to_string()),
        upstream: Some(upstream.to_string()),
        cause,
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
        let expected: &[(&[Cause], u16)] = &[
            (REFUSED, 0),
            (&[NoLiveUpstreams], 503),
            (&[NoLiveUpstreams], 503),
            (REFUSED, 503),
            (REFUSED, 503),
            (CLOSED_OR_RESET, 502),
            (CLOSED_OR_RESET, 502),
            (&[Timeout], 504),
            (BAD_HEADER, 502),
            (&[NoLiveUpstreams], 503),
            (&[Saturated], 503),
            (&[], 200),
        ];
        let lines: Vec<&str> = FIXTURE.lines().collect();
        assert_eq!(lines.len(), expected.len());
        for (line, (cause, status)) in lines.iter().zip(expected) {
            let l = parse_line(line).unwrap_or_else(|| panic!("unparsed: {line}"));
            assert_eq!((l.cause, l.status), (*cause, *status), "{line}");
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

    /// Captured from haproxy 2.6.12 (Debian 12) with a `resolvers` section whose
    /// server name was removed from the zone (gw502 matrix `dns_failure`, 2 Dec 2026).
    #[test]
    fn a_server_taken_out_by_dns_is_a_dns_failure() {
        let nx = "Dec  2 02:23:38 c5o0 haproxy[61]: Server app/app1 is going DOWN for maintenance (DNS NX status). 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.";
        let l = parse_line(nx).unwrap();
        assert_eq!((l.cause, l.status), (&[DnsFailure][..], 0));
        assert_eq!(l.upstream.as_deref(), Some("app/app1"));
        // The request it then turns away is still the symptom, no live upstreams.
        let nosrv = "127.0.0.1:35648 [02/Dec/2026:02:23:38.177] site app/<NOSRV> 0/-1/-1/-1/0 503 217 - - SC-- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"";
        assert_eq!(parse_line(nosrv).unwrap().cause, &[NoLiveUpstreams]);
        // Taken out by hand or by a health check is not about DNS.
        let maint =
            "Server app/app1 is going DOWN for maintenance. 0 active and 0 backup servers left.";
        assert_ne!(parse_line(maint).map(|l| l.cause), Some(&[DnsFailure][..]));
    }

    /// A line is stamped when its request ended, as the other proxies' lines are: a
    /// refused connect retried for 3 s failed visitors 3 s after HAProxy accepted it.
    #[test]
    fn a_request_line_is_stamped_when_it_ended() {
        let lines: Vec<&str> = FIXTURE.lines().collect();
        let accepted = parse_date("25/Nov/2026:19:50:40.478").unwrap();
        assert_eq!(parse_line(lines[3]).unwrap().at_ms, Some(accepted + 3004));
        let at = |timers: &str| {
            let line = format!(
                "127.0.0.1:5 [25/Nov/2026:19:50:40.478] web app/app1 {timers} 503 217 - - SC-- 1/1/0/0/3 0/0 \"GET / HTTP/1.1\""
            );
            parse_line(&line).unwrap().at_ms.unwrap() - accepted
        };
        assert_eq!(at("0/0/-1/-1/+3004"), 3004, "logasap");
        assert_eq!(at("0/0/-1/-1/-1"), 0, "never ended");
        assert_eq!(at("0/0/-1/-1/x"), 0, "not a number");
    }

    #[test]
    fn syslog_prefix_tcplog_and_junk() {
        let l = parse_line("Nov 25 19:50:40 h haproxy[12]: 127.0.0.1:5 [25/Nov/2026:19:50:40.478] db db/pg1 0/-1/1001 0 sC 1/1/0/0/3 0/0").unwrap();
        assert_eq!(l.cause, &[FirewallBlocked]);
        let accepted = parse_date("25/Nov/2026:19:50:40.478").unwrap();
        assert_eq!(l.at_ms, Some(accepted + 1001), "tcplog's Tt");
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
