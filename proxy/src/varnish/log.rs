//! Varnish's shared-memory log, as `varnishlog` prints it: the `FetchError`
//! record of a failed backend fetch, classified into TAXONOMY causes
//! ([`classify`]), and the `-g request` transaction dump the agent reads
//! ([`fetch_failures`]): per failed fetch its time, URL, `Host`, backend,
//! the error and the status the client got.
//!
//! Varnish answers every failed fetch with its own `503 Backend fetch
//! failed`, whatever went wrong behind it; the cause is in the `FetchError`
//! text. Strings come from Varnish 7.1 captures (`proxy/fixtures/varnish/`)
//! and, for older releases (`no backend connection`, `http first read error:
//! EOF`, `Received junk`, `backend write error`), from their documented texts.

use gw502_vocab::Cause::{self, *};

use crate::line::{CLOSED_OR_RESET, ErrorLine, MAX_LINE, NO_SOCKET, REFUSED, cut, errno_in};

/// The answer was not HTTP, or its header was malformed.
const NOT_HTTP_OR_BAD_HEADER: &[Cause] = &[ProtocolMismatch, InvalidHeader, TlsMismatch];
/// Varnish before 7 says `no backend connection` for any connect failure.
const NO_CONNECTION: &[Cause] = &[ServiceDown, WrongPort, NotListening, FirewallBlocked];

/// The status Varnish answers a failed fetch with (`Backend fetch failed`).
pub const FETCH_FAILED_STATUS: u16 = 503;

/// The causes one `FetchError` text points at, most likely first; empty for
/// errors of the cache itself (`Could not get storage`) and unknown texts.
pub fn classify(message: &str) -> &'static [Cause] {
    let m = message.trim();
    let lower = m.to_ascii_lowercase();
    let has = |s: &str| lower.contains(s);
    if has("req.body") {
        // Reading the client's request body failed: nothing behind Varnish did it.
        return &[];
    }
    if has("unhealthy") {
        // The probe marked the backend sick; why it failed is the probe's business.
        return &[NoLiveUpstreams];
    }
    if has("fail errno") || has("connect(") {
        return match errno_of(m) {
            Some(111) => REFUSED,
            Some(110 | 113 | 101) => &[FirewallBlocked],
            Some(2) => NO_SOCKET,
            Some(13) => &[SocketPermissionDenied],
            Some(11) => &[Saturated],
            // `errno 0`: the pool holds the backend down after a recent
            // connect error and did not try; the agent gives it that error's cause.
            _ => NO_CONNECTION,
        };
    }
    if has("no backend connection") {
        return NO_CONNECTION;
    }
    if lower.ends_with(": busy") || has("max_connections") {
        return &[Saturated];
    }
    if has("first byte timeout") || has("between bytes timeout") {
        return &[Timeout];
    }
    if has("connection reset") || has(" 104 ") {
        return &[ConnectionReset];
    }
    if has("htc eof")
        || has("first read error")
        || has("http read error")
        || has("backend write error")
        || has("req.body read error")
    {
        return CLOSED_OR_RESET;
    }
    if has("http format error") || has("received junk") || has("bad protocol") {
        return NOT_HTTP_OR_BAD_HEADER;
    }
    if lower == "overflow" || has("too many headers") || has("header too long") {
        return &[HeaderTooBig];
    }
    if has("insufficient bytes") || has("chunked") || has("body") && has("fail") {
        return &[InvalidBody];
    }
    &[]
}

/// The errno of `fail errno 111 (Connection refused)`, or of `(111: …)`.
fn errno_of(m: &str) -> Option<i32> {
    if let Some((_, rest)) = m.split_once("errno ") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
    errno_in(m)
}

/// The backend a `FetchError` text names (`backend NAME: …`).
pub fn backend_named(message: &str) -> Option<&str> {
    let rest = message.trim().strip_prefix("backend ")?;
    let (name, _) = rest.split_once(':')?;
    (!name.is_empty() && !name.contains(' ')).then_some(name)
}

/// Parses one `varnishlog` record line carrying a `FetchError`: grouped
/// (`--  FetchError     …`), raw (`  32774 FetchError     b …`) or bare
/// (`FetchError …`). `None` for other tags and other shapes.
pub fn parse_line(line: &str) -> Option<ErrorLine> {
    let line = cut(line.trim_end_matches(['\r', '\n']), MAX_LINE).trim_start();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let raw = first.bytes().all(|b| b.is_ascii_digit());
    if !(first == "FetchError"
        || first.bytes().all(|b| b == b'-') && words.next() == Some("FetchError")
        || raw && words.next() == Some("FetchError"))
    {
        return None;
    }
    let (_, message) = line.split_once("FetchError")?;
    let mut message = message.trim();
    if raw {
        message = message
            .strip_prefix("b ")
            .or_else(|| message.strip_prefix("c "))
            .unwrap_or(message)
            .trim_start();
    }
    Some(record(message))
}

/// The [`ErrorLine`] of one `FetchError` text.
fn record(message: &str) -> ErrorLine {
    let cause = classify(message);
    // A body error comes after the status line went out: the client saw a
    // truncated answer, not Varnish's 503.
    let status = if cause == [InvalidBody] || cause.is_empty() {
        0
    } else {
        FETCH_FAILED_STATUS
    };
    ErrorLine {
        level: "error".to_string(),
        message: message.to_string(),
        errno: errno_of(message),
        upstream: backend_named(message).map(str::to_string),
        cause,
        status,
        ..ErrorLine::default()
    }
}

/// One failed backend fetch, from a `varnishlog -g request` dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchFailure {
    /// When the backend request started, epoch ms.
    pub at_ms: i64,
    /// The backend request's transaction id.
    pub vxid: u64,
    /// The URL fetched.
    pub url: String,
    /// The `Host` it was fetched for, without a port.
    pub host: String,
    /// The backend, by name: from `BackendOpen`, else from the error text.
    pub backend: String,
    /// The backend's address from `BackendOpen` (`127.0.0.1:8080`), if it connected.
    pub peer: String,
    /// The `FetchError` text.
    pub message: String,
    /// The status the client got (its `RespStatus`), else the backend
    /// response's (`BerespStatus`); 0 when neither was logged.
    pub status: u16,
}

impl FetchFailure {
    /// The classified line.
    pub fn line(&self) -> ErrorLine {
        let mut l = record(&self.message);
        l.at_ms = (self.at_ms > 0).then_some(self.at_ms);
        l.host = (!self.host.is_empty()).then(|| self.host.clone());
        l.server = l.host.clone();
        l.request = (!self.url.is_empty()).then(|| self.url.clone());
        if !self.backend.is_empty() {
            l.upstream = Some(self.backend.clone());
        }
        if self.status != 0 {
            l.status = self.status;
        }
        l
    }
}

/// Every failed fetch of a `varnishlog -g request` dump (any `-i` subset
/// that keeps `FetchError`), in dump order. Lines of other shapes are skipped.
pub fn fetch_failures(dump: &str) -> Vec<FetchFailure> {
    let mut out = Vec::new();
    // The client side of the current request group: (Host, RespStatus).
    let mut client = (String::new(), 0u16);
    let mut current: Option<FetchFailure> = None;
    let mut failed = false;
    let mut flush = |cur: &mut Option<FetchFailure>, failed: &mut bool, client: &(String, u16)| {
        if let Some(mut f) = cur.take()
            && *failed
        {
            if f.host.is_empty() {
                f.host.clone_from(&client.0);
            }
            if client.1 != 0 {
                f.status = client.1;
            }
            out.push(f);
        }
        *failed = false;
    };
    for line in dump.lines() {
        let line = cut(line, MAX_LINE);
        if line.starts_with('*') {
            flush(&mut current, &mut failed, &client);
            if line.starts_with("* ") {
                client = (String::new(), 0);
            }
            if line.contains("<< BeReq") {
                let vxid = line
                    .rsplit(">>")
                    .next()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                current = Some(FetchFailure {
                    vxid,
                    ..FetchFailure::default()
                });
            }
            continue;
        }
        let Some((tag, value)) = record_of(line) else {
            continue;
        };
        match (tag, current.as_mut()) {
            ("ReqHeader", _) if client.0.is_empty() => {
                if let Some(h) = header(value, "host") {
                    client.0 = h;
                }
            }
            // The client's side is dumped before its backend fetches.
            ("RespStatus", _) => client.1 = value.trim().parse().unwrap_or(0),
            ("Timestamp", Some(f)) if f.at_ms == 0 => f.at_ms = epoch_ms(value).unwrap_or(0),
            ("BereqURL", Some(f)) => f.url = value.trim().to_string(),
            ("BereqHeader", Some(f)) => {
                if let Some(h) = header(value, "host") {
                    f.host = h;
                }
            }
            ("BackendOpen", Some(f)) => {
                // `22 hang 127.0.0.1 43687 127.0.0.1 60100 connect`
                let w: Vec<&str> = value.split_whitespace().collect();
                if let (Some(name), Some(ip), Some(port)) = (w.get(1), w.get(2), w.get(3)) {
                    f.backend = (*name).to_string();
                    f.peer = if ip.contains(':') {
                        format!("[{ip}]:{port}")
                    } else {
                        format!("{ip}:{port}")
                    };
                }
            }
            // The first error that names a cause (a client-side one may come first).
            ("FetchError", Some(f)) if !failed || classify(&f.message).is_empty() => {
                f.message = value.trim().to_string();
                if f.backend.is_empty()
                    && let Some(name) = backend_named(&f.message)
                {
                    f.backend = name.to_string();
                }
                failed = true;
            }
            ("BerespStatus", Some(f)) => f.status = value.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    flush(&mut current, &mut failed, &client);
    out
}

/// `--  Tag            value` to (tag, value).
fn record_of(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start_matches('-');
    if rest.len() == line.len() {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    Some((&rest[..end], rest[end..].trim_start()))
}

/// The value of header `name` in `Name: value`, lowercased, port cut.
fn header(record: &str, name: &str) -> Option<String> {
    let (k, v) = record.split_once(':')?;
    if !k.trim().eq_ignore_ascii_case(name) {
        return None;
    }
    let v = v.trim().to_ascii_lowercase();
    let host = match v.rsplit_once(':') {
        Some((h, p))
            if (h.ends_with(']') || !h.contains(':')) && p.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h.to_string()
        }
        _ => v,
    };
    Some(host)
}

/// `Start: 1796153749.682892 0.000000 0.000000` to epoch ms.
fn epoch_ms(value: &str) -> Option<i64> {
    let secs = value.split_whitespace().nth(1)?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, "0"));
    let whole: i64 = whole.parse().ok()?;
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    whole.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
mod tests;
