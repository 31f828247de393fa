//! The proxy-log evidence sources: [`ProxyLogSource`] follows every error log
//! the proxy configs name and turns the lines written since the last report
//! into `LogSignal`s keyed by (proxy, upstream, cause); [`AccessLogSource`]
//! follows access logs and counts requests per (vhost, status,
//! upstream_status), good ones included.
//!
//! Line parsers are pure and live in the `gw502-proxy` model of each proxy,
//! looked up by the config's kind; [`tail`] follows files across rotation
//! and truncation, and [`zone`] turns the zone-less local times of nginx,
//! HAProxy and Apache into instants with the host's zone rules.

pub(crate) mod signals;
pub mod tail;
pub mod unit_journal;
pub mod zone;

use std::collections::BTreeMap;
use std::path::PathBuf;

use gw502_proto::v1::{AccessLogSection, ProxyConfig, ProxyLogSection, StatusCount};
use gw502_proxy::access::{self, AccessFormat};
use gw502_proxy::{ErrorLine, Proxy};

use signals::Signals;
pub use signals::sanitize;

use crate::proxy_config::AccessFormats;
use crate::source::{Scope, Source, Unavailable};
use tail::Tailer;
use unit_journal::UnitJournal;
use zone::HostZone;

/// Bounds and clock settings shared by both sources.
#[derive(Debug, Clone)]
pub struct ProxyLogSettings {
    /// Bytes read per file per report; older bytes are skipped and counted.
    pub max_bytes_per_file: u64,
    /// The zone of the zone-less times in nginx, HAProxy and Apache logs;
    /// `None` reads the host's (`<etc root>/localtime`, else `TZ`, else UTC)
    /// at every report.
    pub zone: Option<HostZone>,
    /// Most signals or status counts per report.
    pub max_keys: usize,
}

impl Default for ProxyLogSettings {
    fn default() -> Self {
        Self {
            max_bytes_per_file: 4 * 1024 * 1024,
            zone: None,
            max_keys: 512,
        }
    }
}

/// Follows error logs and reports log signals.
#[derive(Debug, Default)]
pub struct ProxyLogSource {
    settings: ProxyLogSettings,
    tailer: Option<Tailer>,
    journal: UnitJournal,
}

impl ProxyLogSource {
    /// A source with the given bounds.
    pub fn new(settings: ProxyLogSettings) -> Self {
        Self {
            settings,
            tailer: None,
            journal: UnitJournal::default(),
        }
    }
}

/// A log to read: (kind, host path or `journal:<unit>`, declaring server name).
type LogFile = (String, PathBuf, String);
/// A unit whose journal stands for its proxy's missing log: (kind, unit, server name).
type LogUnit = (String, String, String);

/// Splits off the error logs that do not exist and whose proxy has a unit:
/// those are read from the unit's journal instead ([`unit_journal`]).
fn journal_fallbacks(scope: &Scope, files: Vec<LogFile>) -> (Vec<LogFile>, Vec<LogUnit>) {
    let mut units: Vec<LogUnit> = Vec::new();
    let mut kept = Vec::new();
    for f in files {
        let unit = scope
            .proxies
            .iter()
            .find(|p| p.kind == f.0 && !p.unit.is_empty() && names_log(scope, p, &f.1))
            .map(|p| p.unit.clone());
        match unit {
            Some(u) if !f.1.exists() => {
                if !units.iter().any(|x| x.1 == u) {
                    units.push((f.0.clone(), u, f.2.clone()));
                }
            }
            _ => kept.push(f),
        }
    }
    (kept, units)
}

/// Whether proxy `p`'s config names the error log at host path `path`.
fn names_log(scope: &Scope, p: &ProxyConfig, path: &std::path::Path) -> bool {
    p.error_logs
        .iter()
        .chain(p.servers.iter().flat_map(|s| &s.error_logs))
        .any(|l| scope.roots.host_path(std::path::Path::new(l)) == path)
}

/// Parses one error-log line of the given proxy kind (pure); `None` for a
/// kind that names no proxy or a line of another shape.
pub fn parse_error_line(kind: &str, raw: &[u8]) -> Option<ErrorLine> {
    gw502_proxy::by_word(kind)?.parse_error_line(raw)
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

impl Source for ProxyLogSource {
    type Section = ProxyLogSection;

    fn name(&self) -> &'static str {
        "proxy_log"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ProxyLogSection, Unavailable> {
        let files = log_files(scope, false);
        let wanted = files.len();
        let (files, units) = journal_fallbacks(scope, files);
        let (mut reads, mut errors) =
            read_all(&mut self.tailer, self.settings.max_bytes_per_file, files).await;
        self.journal
            .retain(&units.iter().map(|u| u.1.clone()).collect::<Vec<_>>());
        let now_s = gw502_vocab::clock::now_ms() / 1000;
        for (kind, unit, vhost) in units {
            match self.journal.read(&unit, now_s).await {
                Ok(lines) => {
                    let read = tail::TailRead {
                        lines,
                        skipped_bytes: 0,
                    };
                    reads.push((
                        (kind, PathBuf::from(format!("journal:{unit}")), vhost),
                        read,
                    ));
                }
                Err(e) => errors.push(e),
            }
        }
        if wanted > 0 && reads.is_empty() {
            return Err(Unavailable::because(errors.join("; ")));
        }
        let mut section = ProxyLogSection::default();
        let mut signals = Signals::new(self.settings.max_keys);
        let zone = match &self.settings.zone {
            Some(z) => z.clone(),
            None => HostZone::of_host(&scope.roots.etc),
        };
        let now = gw502_vocab::clock::now_ms();
        for ((kind, path, vhost), read) in reads {
            section.files.push(path.display().to_string());
            let proxy = gw502_proxy::by_word(&kind);
            for raw in &read.lines {
                section.lines_read += 1;
                let Some(mut l) = proxy.and_then(|p| p.parse_error_line(raw)) else {
                    section.lines_unparsed += 1;
                    continue;
                };
                let local = proxy.is_some_and(|p| p.local_time());
                l.at_ms = Some(match l.at_ms {
                    Some(t) if local => zone.civil_to_utc_ms(t),
                    Some(t) => t,
                    None => now,
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

    fn format_for(&self, proxy: &dyn Proxy, path: &str) -> Option<AccessFormat> {
        if let Some(f) = self.formats.read().ok().and_then(|m| m.get(path).cloned()) {
            return Some(f);
        }
        proxy.default_access_format()
    }
}

impl Source for AccessLogSource {
    type Section = AccessLogSection;

    fn name(&self) -> &'static str {
        "access_log"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<AccessLogSection, Unavailable> {
        // Only proxies whose access logs are counted (they have a format).
        let files: Vec<_> = log_files(scope, true)
            .into_iter()
            .filter(|(kind, _, _)| {
                gw502_proxy::by_word(kind).is_some_and(|p| p.default_access_format().is_some())
            })
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
            let format = gw502_proxy::by_word(&kind)
                .and_then(|p| self.format_for(p, &key))
                .unwrap_or_default();
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
