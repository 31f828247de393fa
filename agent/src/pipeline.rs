//! The agent's evidence sources, wired together in the order their scope
//! needs (see [`crate::report`]).

use gw502_proto::v1::HostReport;
use gw502_proxy::ProxyKind;

use crate::config::Config;
use crate::containers::{self, ContainersSource};
use crate::dns::{DnsSettings, DnsSource};
use crate::journal::{JournalSettings, JournalSource};
use crate::probe::{CrossProbeSource, ProbeSettings, ProbeSource};
use crate::proxy_config::{ProxyConfigSettings, ProxyConfigSource};
use crate::proxy_log::{AccessLogSource, ProxyLogSettings, ProxyLogSource};
use crate::report::{SourceHealth, gather, learn_listeners, learn_proxies};
use crate::sockets::{SocketsSettings, SocketsSource};
use crate::source::{Scope, UnitMemory, UnitRole};
use crate::systemd::{SystemdSettings, SystemdSource};
use crate::varnish::{VarnishSettings, VarnishSource};

/// Every evidence source of one agent, with their state between reports.
pub struct Sources {
    proxy_config: ProxyConfigSource,
    sockets: SocketsSource,
    systemd: SystemdSource,
    journal: JournalSource,
    probes: ProbeSource,
    dns: DnsSource,
    proxy_log: ProxyLogSource,
    access_log: AccessLogSource,
    cross_probes: CrossProbeSource,
    containers: ContainersSource,
    varnish: VarnishSource,
    units: UnitMemory,
    health: SourceHealth,
}

impl Sources {
    /// Builds the sources from the config.
    pub fn new(config: &Config) -> Self {
        let mut settings =
            ProxyConfigSettings::default().with_bin(ProxyKind::Nginx, config.nginx.clone());
        for p in &config.proxy_apis {
            if let Some(file) = &p.config {
                settings = settings.with_config(p.kind, file.clone());
            }
            settings = settings.with_api(p.kind, p.api);
        }
        let proxy_config = ProxyConfigSource::new(settings);
        // Access logs are read with the log_format the proxy config declares.
        let access_log =
            AccessLogSource::new(ProxyLogSettings::default(), proxy_config.access_formats());
        Self {
            proxy_config,
            sockets: SocketsSource::new(SocketsSettings::default()),
            systemd: SystemdSource::new(SystemdSettings::default()),
            journal: JournalSource::new(
                config.state_dir.join("journal"),
                JournalSettings::default(),
            ),
            // A report waits for its probes half an interval at most.
            probes: ProbeSource::new(ProbeSettings {
                budget: config.interval / 2,
                ..config.probe_timeout.into()
            }),
            dns: DnsSource::new(DnsSettings::default()),
            proxy_log: ProxyLogSource::default(),
            access_log,
            cross_probes: CrossProbeSource::new(&config.host_id, &config.cross_probes),
            containers: ContainersSource::new(config.containers.clone()),
            varnish: VarnishSource::new(VarnishSettings::default()),
            units: UnitMemory::new(SystemdSettings::default().max_units),
            health: SourceHealth::default(),
        }
    }

    /// Returns when a direct probe that outlived its report's budget finishes
    /// with news (see [`ProbeSource::late_news`]); never while none runs.
    pub async fn late_news(&mut self) {
        self.probes.late_news().await;
    }

    /// Probes the last report's upstream targets again, between reports (see
    /// [`ProbeSource::start_probes`]).
    pub fn probe_again(&mut self) {
        self.probes.start_probes();
    }

    /// Runs every source once and returns the whole picture (no deltas).
    pub async fn gather(&mut self, config: &Config) -> HostReport {
        let started = std::time::Instant::now();
        let mut scope = Scope {
            roots: config.roots.clone(),
            ..Scope::default()
        };
        for unit in &config.units {
            scope.watch(unit.clone(), UnitRole::Configured);
        }
        // Cold start: units that may serve a target although nothing showed them
        // listening (failed, recently stopped, enabled but inactive). systemd is asked
        // beside the proxy config and socket reads, from the units known before them
        // (configured and remembered); this report's new listeners are left out after.
        let stopped = self.journal.recently_stopped(gw502_vocab::clock::now_ms());
        let mut known = scope.clone();
        self.units.extend(&mut known);
        let Self {
            proxy_config,
            sockets,
            containers,
            systemd,
            health,
            ..
        } = self;
        let (candidates, (proxy_config, sockets, containers)) = tokio::join!(
            async {
                let asked = std::time::Instant::now();
                let found = systemd.discover(&known, &stopped).await;
                metrics::histogram!("gw502_agent_source_seconds", "source" => "systemd_candidates")
                    .record(asked.elapsed().as_secs_f64());
                found
            },
            async {
                let proxy_config = gather(proxy_config, &scope, health).await;
                learn_proxies(&mut scope, &proxy_config);
                let mut sockets = gather(sockets, &scope, health).await;
                // Published ports belong to their container, not to docker.service.
                let containers = if containers.active(&scope) {
                    let section = gather(containers, &scope, health).await;
                    containers::annotate(&mut sockets, &section, &scope.roots.proc);
                    Some(section)
                } else {
                    None
                };
                learn_listeners(&mut scope, &sockets);
                (proxy_config, sockets, containers)
            },
        );
        self.units.extend(&mut scope);
        for (unit, _) in candidates {
            if !scope.units.contains_key(&unit) {
                scope.watch(unit, UnitRole::Candidate);
            }
        }
        let scope = scope;
        let (systemd, probes, dns, cross_probes) = tokio::join!(
            gather(&mut self.systemd, &scope, &self.health),
            gather(&mut self.probes, &scope, &self.health),
            gather(&mut self.dns, &scope, &self.health),
            gather(&mut self.cross_probes, &scope, &self.health),
        );
        // The logs are read last, so the lines a report carries are as new as
        // the report: what the slower sources took is not their lines' age.
        let (journal, mut proxy_log, access_log, varnish) = tokio::join!(
            gather(&mut self.journal, &scope, &self.health),
            gather(&mut self.proxy_log, &scope, &self.health),
            gather(&mut self.access_log, &scope, &self.health),
            gather(&mut self.varnish, &scope, &self.health),
        );
        let mut proxy_config = proxy_config;
        varnish.apply(&mut proxy_config, &mut proxy_log);
        for unit in systemd.units.iter().filter(|u| u.load_state == "not-found") {
            self.units.forget(&unit.name);
        }
        let mut report = HostReport {
            addresses: local_addresses(),
            systemd: Some(systemd),
            sockets: Some(sockets),
            journal: Some(journal),
            proxy_config: Some(proxy_config),
            probes: Some(probes),
            dns: Some(dns),
            proxy_log: Some(proxy_log),
            access_log: Some(access_log),
            cross_probes: (!config.cross_probes.is_empty()).then_some(cross_probes),
            containers,
            full_snapshot: true,
            ..HostReport::default()
        };
        stamp(&mut report, config);
        metrics::histogram!("gw502_agent_gather_seconds").record(started.elapsed().as_secs_f64());
        report
    }
}

/// Stamps the report header fields every report carries.
fn stamp(report: &mut HostReport, config: &Config) {
    report.host_id.clone_from(&config.host_id);
    report.agent_version = env!("CARGO_PKG_VERSION").to_string();
    report.generated_at_ms = gw502_vocab::clock::now_ms();
    report.interval_ms = config.interval.as_millis() as u32;
}

/// The host's interface addresses, loopback excluded.
fn local_addresses() -> Vec<String> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses: Vec<String> = interfaces
        .filter_map(|i| i.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| std::net::IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
        })
        .filter(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}
