//! The proxy-log evidence sources: [`ProxyLogSource`] follows every error log
//! the proxy configs name and turns the lines written since the last report
//! into `LogSignal`s keyed by (proxy, upstream, cause); [`AccessLogSource`]
//! follows access logs and counts requests per (vhost, status,
//! upstream_status), good ones included.
//!
//! Line parsers are pure and live in one submodule per proxy; [`tail`]
//! follows files across rotation and truncation.

pub mod access;
pub mod apache;
pub mod caddy;
pub mod haproxy;
pub mod line;
pub mod nginx;
mod signals;
pub mod tail;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use gw502_proto::v1::{AccessLogSection, ProxyConfig, ProxyLogSection, StatusCount};

use signals::Signals;
pub use signals::sanitize;

use crate::proxy_config::AccessFormats;
use crate::source::{Scope, Source, Unavailable};
use access::AccessFormat;
use line::ErrorLine;
use tail::Tailer;

/// Bounds and clock settings shared by both sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLogSettings {
    /// Bytes read per file per report; older bytes are skipped and counted.
    pub max_bytes_per_file: u64,
    /// Seconds east of UTC of the zone-less times in nginx, HAProxy and
    /// Apache logs (0 on a host that runs in UTC).
    pub utc_offset_secs: i64,
    /// Most signals or status counts per report.
    pub max_keys: usize,
}

impl Default for ProxyLogSettings {
    fn default() -> Self {
        Self {
            max_bytes_per_file: 4 * 1024 * 1024,
            utc_offset_secs: 0,
            max_keys: 512,
        }
    }
}

/// Follows error logs and reports log signals.
#[derive(Debug, Default)]
pub struct ProxyLogSource {
    settings: ProxyLogSettings,
    tailer: Option<Tailer>,
}

impl ProxyLogSource {
    /// A source with the given bounds.
    pub fn new(settings: ProxyLogSettings) -> Self {
        Self {
            settings,
            tailer: None,
        }
    }
}

/// Parses one error-log line of the given proxy kind (pure).
pub fn parse_error_line(kind: &str, raw: &[u8]) -> Option<ErrorLine> {
    if kind == "caddy" {
        return caddy::parse_line(raw);
    }
    let text = String::from_utf8_lossy(&raw[..raw.len().min(line::MAX_LINE)]);
    match kind {
        "nginx" => nginx::parse_error_line(&text),
        "haproxy" => haproxy::parse_line(&text),
        "apache" => apache::parse_error_line(&text),
        _ => None,
    }
}

/// (kind, host path, declaring server name) of every log named by `proxies`.
fn log_files(scope: &Scope, access: bool) -> Vec<(String, PathBuf, String)> {
    let mut out: Vec<(String, PathBuf, String)> = Vec::new();
    let mut add = |p: &ProxyConfig, path: &str, vhost: &str| {
        let host = scope.roots.host_path(std::path::Path::new(path));
        match out.iter_mut().find(|(_, h, _)| *h == host) {
            // Shared by several servers: the line must say which.
            Some(existing) if existing.2 != vhost => existing.2.clear(),
            Some(_) => {}
            None => out.push((p.kind.clone(), host, vhost.to_string())),
        }
    };
    for p in &scope.proxies {
        let top = if access {
            &p.access_logs
        } else {
            &p.error_logs
        };
        for path in top {
            add(p, path, "");
        }
        for s in &p.servers {
            let name = s.names.first().map(String::as_str).unwrap_or("");
            for path in if access {
                &s.access_logs
            } else {
                &s.error_logs
            } {
                add(p, path, name);
            }
        }
    }
    out
}

/// Reads every file with the tailer off the runtime; returns lines per file
/// and the read errors.
async fn read_all(
    tailer: &mut Option<Tailer>,
    max_bytes: u64,
    files: Vec<(String, PathBuf, String)>,
) -> (
    Vec<((String, PathBuf, String), tail::TailRead)>,
    Vec<String>,
) {
    let mut t = tailer.take().unwrap_or_else(|| Tailer::new(max_bytes));
    let job = tokio::task::spawn_blocking(move || {
        let keep: Vec<PathBuf> = files.iter().map(|f| f.1.clone()).collect();
        t.retain(&keep);
        let mut reads = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            match t.read(&f.1) {
                Ok(r) => reads.push((f, r)),
                Err(e) => errors.push(format!("{}: {e}", f.1.display())),
            }
        }
        (t, reads, errors)
    });
    match job.await {
        Ok((t, reads, errors)) => {
            *tailer = Some(t);
            (reads, errors)
        }
        Err(e) => (Vec::new(), vec![format!("log reader failed: {e}")]),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Source for ProxyLogSource {
    type Section = ProxyLogSection;

    fn name(&self) -> &'static str {
        "proxy_log"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ProxyLogSection, Unavailable> {
        let files = log_files(scope, false);
        let wanted = files.len();
        let (reads, errors) =
            read_all(&mut self.tailer, self.settings.max_bytes_per_file, files).await;
        if wanted > 0 && reads.is_empty() {
            return Err(Unavailable::because(errors.join("; ")));
        }
        let mut section = ProxyLogSection::default();
        let mut signals = Signals::new(self.settings.max_keys);
        let offset_ms = self.settings.utc_offset_secs * 1000;
        let now = now_ms();
        for ((kind, path, vhost), read) in reads {
            section.files.push(path.display().to_string());
            for raw in &read.lines {
                section.lines_read += 1;
                let Some(mut l) = parse_error_line(&kind, raw) else {
                    section.lines_unparsed += 1;
                    continue;
                };
                l.at_ms = Some(match (l.at_ms, kind.as_str()) {
                    (Some(t), "caddy") => t,
                    (Some(t), _) => t - offset_ms,
                    (None, _) => now,
                });
                signals.add(&kind, &vhost, &l, raw);
            }
        }
        section.signals = signals.into_signals();
        Ok(section)
    }
}

/// Follows access logs and counts requests per (vhost, status, upstream_status).
#[derive(Debug, Default)]
pub struct AccessLogSource {
    settings: ProxyLogSettings,
    formats: AccessFormats,
    tailer: Option<Tailer>,
}

impl AccessLogSource {
    /// A source using the formats learned by
    /// [`crate::proxy_config::ProxyConfigSource::access_formats`].
    pub fn new(settings: ProxyLogSettings, formats: AccessFormats) -> Self {
        Self {
            settings,
            formats,
            tailer: None,
        }
    }

    fn format_for(&self, kind: &str, path: &str) -> Option<AccessFormat> {
        if let Some(f) = self.formats.read().ok().and_then(|m| m.get(path).cloned()) {
            return Some(f);
        }
        match kind {
            "nginx" => Some(AccessFormat::combined()),
            "apache" => Some(AccessFormat::apache_named("combined")),
            _ => None,
        }
    }
}

impl Source for AccessLogSource {
    type Section = AccessLogSection;

    fn name(&self) -> &'static str {
        "access_log"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<AccessLogSection, Unavailable> {
        let files: Vec<_> = log_files(scope, true)
            .into_iter()
            .filter(|(kind, _, _)| kind == "nginx" || kind == "apache")
            .collect();
        let wanted = files.len();
        let (reads, errors) =
            read_all(&mut self.tailer, self.settings.max_bytes_per_file, files).await;
        if wanted > 0 && reads.is_empty() {
            return Err(Unavailable::because(errors.join("; ")));
        }
        let mut section = AccessLogSection::default();
        let mut counts: BTreeMap<(String, u32, String), StatusCount> = BTreeMap::new();
        for ((kind, path, vhost), read) in reads {
            let key = path.display().to_string();
            let format = self.format_for(&kind, &key).unwrap_or_default();
            section.files.push(key);
            for raw in &read.lines {
                let text = String::from_utf8_lossy(raw);
                let Some(l) = access::parse_line(&text, &format) else {
                    continue;
                };
                let vhost = l.host.unwrap_or_else(|| vhost.clone());
                let up = l.upstream_status.unwrap_or_default();
                let k = (vhost, u32::from(l.status), up);
                if !counts.contains_key(&k) && counts.len() >= self.settings.max_keys {
                    continue;
                }
                let c = counts.entry(k.clone()).or_insert_with(|| StatusCount {
                    vhost: k.0.clone(),
                    status: k.1,
                    upstream_status: k.2.clone(),
                    ..StatusCount::default()
                });
                c.count += 1;
                c.last_at_ms = c.last_at_ms.max(l.at_ms.unwrap_or(0));
            }
        }
        section.counts = counts.into_values().collect();
        Ok(section)
    }
}

#[cfg(test)]
mod tests;
