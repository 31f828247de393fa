//! Apache httpd error_log lines from mod_proxy (`AH00957`, `AH01114`,
//! `AH01102`, `AH02454`, `AH10124`): `[time] [module:level] [pid N:tid M]
//! [client ip:port] (errno)text: AHnnnnn: message`, classified into causes.
//!
//! mod_proxy_fcgi's `AH01075: Error dispatching request to ...` is left
//! unclassified: httpd logs the same line when the response header had already
//! gone out (`has_responded` in `fcgi_do_request`; visitors then got that
//! header's status and a cut body), so the line tells neither a cause nor a
//! status. A FastCGI read timeout is found by the direct probe, and its 504 by
//! the proxy model.

use gw502_vocab::Cause::{self, *};

use crate::line::{
    ErrorLine, MAX_LINE, NO_SOCKET, REFUSED, UNIX_REFUSED, civil_ms, cut, errno_in, month,
};

/// Parses one Apache error_log line (pure). `None` for other shapes.
pub fn parse_error_line(line: &str) -> Option<ErrorLine> {
    let line = cut(line.trim_end_matches(['\r', '\n']), MAX_LINE);
    let mut rest = line.strip_prefix('[')?;
    let (time, after) = rest.split_once("] [")?;
    let (module_level, after) = after.split_once(']')?;
    rest = after.trim_start();
    let level = module_level.rsplit(':').next().unwrap_or("").to_string();
    let mut out = ErrorLine {
        at_ms: parse_time(time),
        level,
        ..ErrorLine::default()
    };
    while let Some(inner) = rest.strip_prefix('[') {
        let Some((field, after)) = inner.split_once(']') else {
            break;
        };
        if let Some(pid) = field.strip_prefix("pid ") {
            out.pid = pid.split(':').next().and_then(|p| p.parse().ok());
        } else if let Some(client) = field.strip_prefix("client ") {
            out.client = Some(client.to_string());
        }
        rest = after.trim_start();
    }
    out.message = rest.to_string();
    out.errno = errno_in(rest);
    out.upstream = upstream(rest);
    let has = |s: &str| rest.contains(s);
    let unix = has("Unix domain socket") || has("unix:");
    let (cause, status): (&'static [Cause], u16) = if has("AH00898") && has("DNS lookup failure") {
        // `(EAI 2)Name or service not known: [client ..] AH00898: DNS lookup failure
        // for: app.internal returned by /`: mod_proxy answers 500.
        out.upstream = word_after(rest, "DNS lookup failure for: ");
        (&[DnsFailure], 500)
    } else if has("AH10124") {
        (&[HeaderTooBig], 502)
    } else if has("AH01102") || has("AH01103") {
        match out.errno {
            // mod_proxy_http answers a status line it could not read 502, a
            // timeout too (`ap_proxyerror(r, HTTP_BAD_GATEWAY, ...)`).
            Some(70007) => (&[Timeout], 502),
            Some(104) => (&[ConnectionReset], 502),
            _ => (&[PrematureClose], 502),
        }
    } else if has("AH00957") || has("AH01114") || has("AH02454") || has("AH00959") {
        match out.errno {
            Some(111) if unix => (UNIX_REFUSED, 503),
            Some(111) => (REFUSED, 503),
            Some(2) => (NO_SOCKET, 503),
            Some(13) => (&[SocketPermissionDenied], 503),
            Some(11) => (&[Saturated], 503),
            // APR's own connect timeout (`(70007)The timeout specified has
            // expired`, after `connectiontimeout`) is the kernel's 110 seen earlier.
            Some(110) | Some(113) | Some(101) | Some(70007) => (&[FirewallBlocked], 503),
            _ => return Some(out),
        }
    } else {
        return Some(out);
    };
    out.cause = cause;
    out.status = status;
    Some(out)
}

/// The backend a line names: "Unix domain socket /path (" as `unix:/path`
/// (the form proxy logs and targets share), else "connect to X (" or
/// "backend: X". The socket marker goes first: AH02454 says both.
fn upstream(msg: &str) -> Option<String> {
    word_after(msg, "Unix domain socket ")
        .map(|path| format!("unix:{path}"))
        .or_else(|| word_after(msg, "attempt to connect to "))
        .or_else(|| word_after(msg, "backend: "))
}

/// The word after `marker` in `msg`, up to a space or comma.
fn word_after(msg: &str, marker: &str) -> Option<String> {
    let v = &msg[msg.find(marker)? + marker.len()..];
    let end = v.find([' ', ',']).unwrap_or(v.len());
    Some(v[..end].to_string())
}

/// `Wed Oct 11 14:32:52.123456 2023` read as UTC.
fn parse_time(s: &str) -> Option<i64> {
    let w: Vec<&str> = s.split_whitespace().collect();
    let [_, mon, day, clock, year] = w.as_slice() else {
        return None;
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut p = hms.split(':').map(|x| x.parse::<u32>().ok());
    let (h, mi, sec) = (p.next()??, p.next()??, p.next()??);
    let ms = frac.get(..3.min(frac.len()))?.parse().unwrap_or(0);
    civil_ms(
        year.parse().ok()?,
        month(mon)?,
        day.parse().ok()?,
        h,
        mi,
        sec,
        ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes from TAXONOMY §3 and the Apache mod_proxy message catalogue,
    // for rows the capture cannot make (EACCES, dated times); the captured
    // lines (proxy/fixtures/apache/error.log) are checked in tests/labels.rs.
    #[test]
    fn mod_proxy_lines() {
        let cases: [(&str, &[Cause], u16); 8] = [
            (
                "[Wed Nov 25 19:50:15.123456 2026] [proxy:error] [pid 1234:tid 5678] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:8080 (127.0.0.1:8080) failed",
                REFUSED,
                503,
            ),
            // A connect that APR timed out (`connectiontimeout`): a drop on the path.
            (
                "[Wed Nov 25 19:50:15.123456 2026] [proxy:error] [pid 1234:tid 5678] (70007)The timeout specified has expired: AH00957: http: attempt to connect to 10.77.0.12:8080 (10.77.0.12:8080) failed",
                &[FirewallBlocked],
                503,
            ),
            (
                "[Wed Nov 25 19:50:15.123456 2026] [proxy_http:error] [pid 1234:tid 5678] [client 10.0.0.1:5555] AH01114: HTTP: failed to make connection to backend: 127.0.0.1",
                &[],
                0,
            ),
            (
                "[Wed Nov 25 19:50:15.1 2026] [proxy:error] [pid 9] (2)No such file or directory: AH02454: FCGI: attempt to connect to Unix domain socket /run/php/php8.2-fpm.sock (localhost:8000) failed",
                NO_SOCKET,
                503,
            ),
            (
                "[Wed Nov 25 19:50:15.1 2026] [proxy:error] [pid 9] (13)Permission denied: AH02454: FCGI: attempt to connect to Unix domain socket /run/php/php8.2-fpm.sock (localhost:8000) failed",
                &[SocketPermissionDenied],
                503,
            ),
            (
                "[Wed Nov 25 19:50:15.1 2026] [proxy_http:error] [pid 9] (104)Connection reset by peer: [client 1.2.3.4:5] AH01102: error reading status line from remote server 127.0.0.1:8080",
                &[ConnectionReset],
                502,
            ),
            (
                "[Wed Nov 25 19:50:15.1 2026] [proxy_http:error] [pid 9] (70007)The timeout specified has expired: [client 1.2.3.4:5] AH01102: error reading status line from remote server 127.0.0.1:8080",
                &[Timeout],
                502,
            ),
            (
                "[Wed Nov 25 19:50:15.1 2026] [proxy_http:error] [pid 9] [client 1.2.3.4:5] AH10124: header size is over the limit allowed by ResponseFieldSize (8190 bytes)",
                &[HeaderTooBig],
                502,
            ),
        ];
        for (line, cause, status) in cases {
            let l = parse_error_line(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((l.cause, l.status), (cause, status), "{line}");
            assert_eq!(l.at_ms.map(|t| t / 1000), Some(1_795_636_215));
        }
        // Captured from apache 2.4.67 (Debian 12) with `addressttl=2` after the
        // upstream's name was removed from the zone (gw502 matrix `dns_failure`).
        let dns = "[Wed Dec 02 02:20:26.095020 2026] [proxy:error] [pid 91:tid 145] (EAI 2)Name or service not known: [client 10.77.0.1:57508] AH00898: DNS lookup failure for: app-backend.lab returned by /";
        let l = parse_error_line(dns).unwrap();
        assert_eq!((l.cause, l.status), (&[DnsFailure][..], 500));
        assert_eq!(l.upstream.as_deref(), Some("app-backend.lab"));
        let read = "[Tue Dec 01 17:29:00.356495 2026] [proxy:error] [pid 3586:tid 3595] [client 127.0.0.1:56238] AH00898: Error reading from remote server returned by /hang";
        assert!(parse_error_line(read).unwrap().cause.is_empty());
        let l = parse_error_line(cases[0].0).unwrap();
        assert_eq!(l.upstream.as_deref(), Some("127.0.0.1:8080"));
        let socket = parse_error_line(cases[3].0).unwrap();
        assert_eq!(
            socket.upstream.as_deref(),
            Some("unix:/run/php/php8.2-fpm.sock")
        );
        assert_eq!(l.level, "error");
        assert!(parse_error_line("[x] [y").is_none());
        let _ = parse_error_line("[a] [b] [pid (1)\u{0}: AH00957");
    }
}
