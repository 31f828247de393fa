//! Aggregates parsed error lines into `LogSignal`s keyed by (proxy,
//! upstream, cause), with counts, the most severe level, first/last time and
//! up to three sanitised sample lines; the number of keys is bounded.

use std::collections::BTreeMap;

use gw502_proto::v1::LogSignal;
use gw502_proxy::ErrorLine;
use gw502_proxy::line::cut;
use gw502_proxy::target::split_url;
use gw502_vocab::Cause;

/// Samples kept per signal.
const MAX_SAMPLES: usize = 3;
/// Longest sample, in bytes after escaping.
const MAX_SAMPLE: usize = 512;

/// Escapes control characters (`\xNN`) and invalid UTF-8, and caps the
/// length, so a log line is safe to store and print.
pub fn sanitize(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_SAMPLE * 4)]);
    let mut out = String::with_capacity(text.len().min(MAX_SAMPLE));
    for c in text.chars() {
        if out.len() >= MAX_SAMPLE {
            break;
        }
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c) & 0xff));
        } else {
            out.push(c);
        }
    }
    cut(&out, MAX_SAMPLE).to_string()
}

/// Severity rank of a level word (higher is worse).
fn rank(level: &str) -> u8 {
    match level {
        "emerg" => 7,
        "alert" => 6,
        "crit" => 5,
        "error" => 4,
        "warn" | "warning" => 3,
        "notice" => 2,
        "info" => 1,
        _ => 0,
    }
}

/// The upstream without the request URI: `http://127.0.0.1:3000/x` to
/// `http://127.0.0.1:3000`; for DNS lines without one, the name that failed.
fn upstream_key(l: &ErrorLine) -> String {
    if let Some(up) = &l.upstream {
        let (scheme, authority) = split_url(up);
        return if scheme.is_empty() {
            authority.to_string()
        } else {
            format!("{scheme}://{authority}")
        };
    }
    let m = &l.message;
    if let Some(name) = m.strip_prefix("no resolver defined to resolve ") {
        return name.to_string();
    }
    if let Some((name, _)) = m.split_once(" could not be resolved") {
        return name.to_string();
    }
    String::new()
}

/// Signals under construction for one report.
pub struct Signals {
    map: BTreeMap<(String, String, String), LogSignal>,
    max: usize,
}

impl Signals {
    /// An empty set holding at most `max` keys.
    pub fn new(max: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            max,
        }
    }

    /// Adds a line that has a cause; others are ignored.
    pub fn add(&mut self, proxy: &str, vhost: &str, l: &ErrorLine, raw: &[u8]) {
        if l.cause.is_empty() {
            return;
        }
        let key = (proxy.to_string(), upstream_key(l), Cause::join_set(l.cause));
        if !self.map.contains_key(&key) && self.map.len() >= self.max {
            return;
        }
        let at = l.at_ms.unwrap_or(0);
        let s = self.map.entry(key.clone()).or_insert_with(|| LogSignal {
            proxy: key.0.clone(),
            upstream: key.1.clone(),
            cause: key.2.clone(),
            first_at_ms: at,
            last_at_ms: at,
            ..LogSignal::default()
        });
        s.count = s.count.saturating_add(1);
        if rank(&l.level) > rank(&s.level) {
            s.level = l.level.clone();
        }
        s.first_at_ms = s.first_at_ms.min(at);
        s.last_at_ms = s.last_at_ms.max(at);
        if s.server.is_empty() {
            s.server = l
                .server
                .clone()
                .or_else(|| l.host.clone())
                .unwrap_or_else(|| vhost.to_string());
        }
        if s.status == 0 {
            s.status = u32::from(l.status);
        }
        if s.samples.len() < MAX_SAMPLES {
            s.samples.push(sanitize(raw));
        }
    }

    /// The finished signals, ordered by key.
    pub fn into_signals(self) -> Vec<LogSignal> {
        self.map.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_caps() {
        assert_eq!(sanitize(b"a\x1b[31m\x00b\xff"), "a\\x1b[31m\\x00b\u{fffd}");
        assert!(sanitize(&[b'x'; 10_000]).len() <= MAX_SAMPLE);
        assert!(sanitize("é".repeat(1000).as_bytes()).len() <= MAX_SAMPLE);
    }

    #[test]
    fn aggregates_by_proxy_upstream_cause_with_bounds() {
        let mut s = Signals::new(2);
        let mut l = ErrorLine {
            level: "error".into(),
            upstream: Some("http://127.0.0.1:3000/a".into()),
            cause: &[Cause::Timeout],
            status: 504,
            at_ms: Some(10),
            ..ErrorLine::default()
        };
        s.add("nginx", "v", &l, b"one");
        l.upstream = Some("http://127.0.0.1:3000/b".into());
        l.at_ms = Some(5);
        l.level = "crit".into();
        for _ in 0..4 {
            s.add("nginx", "v", &l, b"two");
        }
        l.cause = &[Cause::Saturated];
        s.add("nginx", "v", &l, b"x");
        l.cause = &[Cause::DnsFailure];
        s.add("nginx", "v", &l, b"x");
        let out = s.into_signals();
        assert_eq!(out.len(), 2);
        let t = out.iter().find(|x| x.cause == "timeout").unwrap();
        assert_eq!((t.count, t.first_at_ms, t.last_at_ms), (5, 5, 10));
        assert_eq!(
            (t.upstream.as_str(), t.level.as_str(), t.status),
            ("http://127.0.0.1:3000", "crit", 504)
        );
        assert_eq!(t.samples.len(), 3);
        assert_eq!(t.server, "v");
    }
}
