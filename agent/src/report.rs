//! Builds a [`HostReport`] by running every evidence source in order, and
//! shrinks steady-state reports to what changed.
//!
//! The order matters: the proxy config names targets, log files and sites;
//! sockets name the units owning listeners; together they decide which units
//! systemd and the journal look at, what gets probed and which names get
//! resolved. A source that fails or hangs fills its section's `unavailable`
//! and the report goes on.
//!
//! Snapshot sections that did not change since the last report are left out
//! (the collector keeps the previous value); every `full_every`-th report is a
//! full snapshot so a collector that missed something converges.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use gw502_proto::v1::{
    AccessLogSection, ContainersSection, CrossProbeSection, DnsSection, HostReport, JournalSection,
    ProbesSection, ProxyConfigSection, ProxyLogSection, SocketsSection, SystemdSection,
};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::log_limit::{Failure, LogLimit};
use crate::source::{Scope, Source, Unavailable, UnitRole};

/// A proto section that can say "unavailable: reason".
pub trait Section: Default {
    /// Marks the section unavailable.
    fn unavailable(reason: String) -> Self;
}

macro_rules! sections {
    ($($ty:ty),* $(,)?) => {$(
        impl Section for $ty {
            fn unavailable(reason: String) -> Self {
                Self { unavailable: reason, ..Default::default() }
            }
        }
    )*};
}

sections!(
    SystemdSection,
    SocketsSection,
    JournalSection,
    ProxyConfigSection,
    ProbesSection,
    DnsSection,
    ProxyLogSection,
    AccessLogSection,
    CrossProbeSection,
    ContainersSection,
);

/// How long one source may take before its section is marked unavailable.
pub const SOURCE_DEADLINE: Duration = Duration::from_secs(20);

/// How often a source that keeps failing is logged.
pub const SOURCE_WARN_EVERY: Duration = Duration::from_secs(600);

/// Which sources are failing, for rate-limited warnings: the first failure
/// of a source is a warning, then at most one per [`SOURCE_WARN_EVERY`] with
/// the count suppressed in between, and an info line when it recovers.
#[derive(Debug, Default)]
pub struct SourceHealth {
    limits: Mutex<HashMap<&'static str, LogLimit>>,
}

impl SourceHealth {
    /// Records the outcome of one run of the source `name` and logs it.
    pub fn record(&self, name: &'static str, outcome: Result<(), &str>) {
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        let limit = limits
            .entry(name)
            .or_insert_with(|| LogLimit::new(SOURCE_WARN_EVERY));
        match outcome {
            Ok(()) => {
                if limit.success() {
                    tracing::info!(source = name, "source available again");
                }
            }
            Err(reason) => {
                if let Failure::Log { suppressed } = limit.failure(Instant::now()) {
                    tracing::warn!(source = name, reason, suppressed, "source unavailable");
                }
            }
        }
    }
}

/// Runs one source with a deadline, turning failure into an unavailable
/// section, and records the outcome in `health`.
pub async fn gather<S>(source: &mut S, scope: &Scope, health: &SourceHealth) -> S::Section
where
    S: Source,
    S::Section: Section,
{
    let name = source.name();
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(SOURCE_DEADLINE, source.collect(scope)).await {
        Ok(result) => result,
        Err(_) => Err(Unavailable(format!(
            "{name} took longer than {SOURCE_DEADLINE:?}"
        ))),
    };
    metrics::histogram!("gw502_agent_source_seconds", "source" => name)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(section) => {
            health.record(name, Ok(()));
            section
        }
        Err(Unavailable(reason)) => {
            metrics::counter!("gw502_agent_source_unavailable_total", "source" => name)
                .increment(1);
            health.record(name, Err(&reason));
            S::Section::unavailable(reason)
        }
    }
}

/// Extends the scope with what the proxy config says: proxies, their units
/// and the site names they serve.
pub fn learn_proxies(scope: &mut Scope, section: &ProxyConfigSection) {
    scope.proxies.clone_from(&section.proxies);
    let mut names = Vec::new();
    for proxy in &section.proxies {
        if !proxy.unit.is_empty() {
            scope.watch(proxy.unit.clone(), UnitRole::Proxy);
        }
        for name in proxy.servers.iter().flat_map(|s| &s.names) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    scope.site_names = names;
}

/// Extends the scope with listeners, watching their units, and marking the
/// units whose listener a proxy targets as upstreams.
pub fn learn_listeners(scope: &mut Scope, section: &SocketsSection) {
    scope.listeners.clone_from(&section.listeners);
    let targets: Vec<_> = scope
        .proxies
        .iter()
        .flat_map(|p| &p.targets)
        .cloned()
        .collect();
    for listener in &section.listeners {
        if listener.unit.is_empty() {
            continue;
        }
        scope.watch(listener.unit.clone(), UnitRole::Listener);
        let targeted = targets.iter().any(|t| match listener.family.as_str() {
            "unix" => !t.unix_path.is_empty() && t.unix_path == listener.address,
            _ => t.port != 0 && t.port == listener.port,
        });
        if targeted {
            scope.watch(listener.unit.clone(), UnitRole::Upstream);
        }
    }
}

/// Leaves out snapshot sections that did not change since the last report.
#[derive(Debug, Default)]
pub struct Deltas {
    last: BTreeMap<&'static str, [u8; 32]>,
    reports: u64,
    full_every: u64,
}

impl Deltas {
    /// Sends a full snapshot every `full_every` reports (at least 1).
    pub fn new(full_every: u64) -> Self {
        Self {
            full_every: full_every.max(1),
            ..Self::default()
        }
    }

    /// Makes the next report a full snapshot (e.g. after reports were dropped).
    pub fn force_full(&mut self) {
        self.last.clear();
        self.reports = 0;
    }

    /// Strips unchanged snapshot sections from `report`, or marks it full.
    pub fn apply(&mut self, report: &mut HostReport) {
        let full = self.reports.is_multiple_of(self.full_every);
        self.reports += 1;
        report.full_snapshot = full;
        self.keep_if_changed("systemd", &mut report.systemd, full, |_| {});
        self.keep_if_changed("sockets", &mut report.sockets, full, |_| {});
        self.keep_if_changed("proxy_config", &mut report.proxy_config, full, |_| {});
        self.keep_if_changed(
            "probes",
            &mut report.probes,
            full,
            |s: &mut ProbesSection| {
                for probe in &mut s.probes {
                    probe.at_ms = 0;
                    probe.elapsed_ms = 0;
                }
            },
        );
        self.keep_if_changed("containers", &mut report.containers, full, |_| {});
        self.keep_if_changed("dns", &mut report.dns, full, |s: &mut DnsSection| {
            for answer in &mut s.answers {
                answer.elapsed_ms = 0;
            }
        });
    }

    fn keep_if_changed<T: Message + Clone>(
        &mut self,
        name: &'static str,
        section: &mut Option<T>,
        full: bool,
        stable: impl Fn(&mut T),
    ) {
        let Some(value) = section else { return };
        let mut comparable = value.clone();
        stable(&mut comparable);
        let digest: [u8; 32] = Sha256::digest(comparable.encode_to_vec()).into();
        let unchanged = self.last.insert(name, digest) == Some(digest);
        if unchanged && !full {
            *section = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1::{DirectProbe, Listener, ProxyConfig, UpstreamTarget, VirtualServer};
    use std::sync::Arc;

    fn probes(outcome: &str, at_ms: i64) -> Option<ProbesSection> {
        Some(ProbesSection {
            probes: vec![DirectProbe {
                outcome: outcome.into(),
                at_ms,
                elapsed_ms: at_ms as u32,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn unchanged_sections_are_left_out_until_the_next_full_snapshot() {
        let mut deltas = Deltas::new(3);
        let mut reports: Vec<HostReport> = (0..4)
            .map(|i| HostReport {
                probes: probes(if i == 2 { "refused" } else { "ok" }, i),
                ..Default::default()
            })
            .collect();
        for report in &mut reports {
            deltas.apply(report);
        }
        let kept: Vec<_> = reports
            .iter()
            .map(|r| (r.full_snapshot, r.probes.is_some()))
            .collect();
        assert_eq!(
            kept,
            [(true, true), (false, false), (false, true), (true, true)]
        );
    }

    #[test]
    fn scope_learns_units_and_upstreams() {
        let mut scope = Scope::default();
        learn_proxies(
            &mut scope,
            &ProxyConfigSection {
                proxies: vec![ProxyConfig {
                    unit: "nginx.service".into(),
                    servers: vec![VirtualServer {
                        names: vec!["shop.example".into()],
                        ..Default::default()
                    }],
                    targets: vec![UpstreamTarget {
                        port: 3000,
                        host: "127.0.0.1".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        learn_listeners(
            &mut scope,
            &SocketsSection {
                listeners: vec![
                    Listener {
                        family: "tcp4".into(),
                        port: 3000,
                        unit: "app.service".into(),
                        ..Default::default()
                    },
                    Listener {
                        family: "tcp4".into(),
                        port: 22,
                        unit: "ssh.service".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        );
        assert_eq!(scope.site_names, ["shop.example"]);
        assert_eq!(scope.units["nginx.service"], [UnitRole::Proxy]);
        assert_eq!(
            scope.units["app.service"],
            [UnitRole::Upstream, UnitRole::Listener]
        );
        assert_eq!(scope.units["ssh.service"], [UnitRole::Listener]);
    }

    /// A source that fails while `failing` says so.
    struct Flaky {
        failing: bool,
    }

    impl Source for Flaky {
        type Section = DnsSection;
        fn name(&self) -> &'static str {
            "dns"
        }
        async fn collect(&mut self, _: &Scope) -> Result<DnsSection, Unavailable> {
            if self.failing {
                Err(Unavailable("resolv.conf unreadable".into()))
            } else {
                Ok(DnsSection::default())
            }
        }
    }

    /// Log lines written while the returned guard lives (this thread only).
    fn capture() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Writer(writer.clone()))
            .with_ansi(false)
            .finish();
        (buffer, tracing::subscriber::set_default(subscriber))
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(buffer: &Mutex<Vec<u8>>) -> Vec<String> {
        let text = String::from_utf8(std::mem::take(&mut *buffer.lock().unwrap())).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_warns_first_then_rarely_then_says_it_recovered() {
        let (logs, _guard) = capture();
        let health = SourceHealth::default();
        let scope = Scope::default();
        let mut source = Flaky { failing: true };
        let section = gather(&mut source, &scope, &health).await;
        assert_eq!(section.unavailable, "resolv.conf unreadable");
        let first = lines(&logs);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(first[0].contains("WARN") && first[0].contains("source unavailable"));
        assert!(first[0].contains("source=\"dns\"") && first[0].contains("suppressed=0"));

        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(60)).await;
            gather(&mut source, &scope, &health).await;
        }
        assert!(
            lines(&logs).is_empty(),
            "repeats within the period are quiet"
        );

        tokio::time::advance(SOURCE_WARN_EVERY).await;
        gather(&mut source, &scope, &health).await;
        let again = lines(&logs);
        assert_eq!(again.len(), 1, "{again:?}");
        assert!(again[0].contains("WARN") && again[0].contains("suppressed=3"));

        source.failing = false;
        gather(&mut source, &scope, &health).await;
        gather(&mut source, &scope, &health).await;
        let recovered = lines(&logs);
        assert_eq!(recovered.len(), 1, "{recovered:?}");
        assert!(recovered[0].contains("INFO") && recovered[0].contains("source available again"));
    }
}
