//! Builds the `HostReport`s an agent sends for one failure scenario: the
//! proxy config, systemd units, listeners, log signals, access counts,
//! direct probes, journal entries, DNS answers and cross-probes, shaped the
//! way the agent's sources fill them (labels and samples from TAXONOMY §3).
//! Times are relative to the moment the report is built, so the collector's
//! evidence window always holds them.

use gw502_proto::v1::{
    AccessLogSection, ConfigTest, CrossProbeSection, DirectProbe, DnsAnswer, DnsSection,
    EdgeObservation, HostReport, JournalEntry, JournalSection, Listener, LogSignal, ProbesSection,
    ProxyConfig, ProxyConfigSection, ProxyLogSection, SocketsSection, StatusCount, SystemdSection,
    UnitEvent, UnitState, UpstreamTarget, VirtualServer,
};
use gw502_vocab::clock::now_ms;

/// One host's report under construction; every section is present.
#[derive(Debug, Clone)]
pub struct Host {
    /// The report (without `seq`/`agent_instance`, set when sent).
    pub report: HostReport,
    /// The site its proxy serves.
    pub site: String,
    now: i64,
}

/// An nginx error.log line as the agent samples it.
pub fn ngx_line(site: &str, level: &str, msg: &str, upstream: &str) -> String {
    format!(
        "2024/05/01 10:00:00 [{level}] 811#811: *7 {msg}, client: 10.77.0.1, server: {site}, request: \"GET / HTTP/1.1\", upstream: \"{upstream}\", host: \"{site}\""
    )
}

/// A host with every section present and empty, serving `site`.
pub fn host(id: &str, site: &str) -> Host {
    Host {
        report: HostReport {
            host_id: id.into(),
            agent_version: "causes-test".into(),
            interval_ms: 10_000,
            full_snapshot: true,
            systemd: Some(SystemdSection::default()),
            sockets: Some(SocketsSection {
                method: "netlink".into(),
                ..Default::default()
            }),
            journal: Some(JournalSection::default()),
            proxy_config: Some(ProxyConfigSection::default()),
            probes: Some(ProbesSection::default()),
            dns: Some(DnsSection::default()),
            proxy_log: Some(ProxyLogSection::default()),
            access_log: Some(AccessLogSection::default()),
            cross_probes: Some(CrossProbeSection::default()),
            ..HostReport::default()
        },
        site: site.into(),
        now: now_ms(),
    }
}

/// nginx serving `site`, proxying to `upstream` (`http://127.0.0.1:3000`,
/// `fastcgi://unix:/run/php/php8.2-fpm.sock`).
pub fn nginx(id: &str, site: &str, upstream: &str) -> Host {
    host(id, site).proxy("nginx", "nginx.service", upstream)
}

/// The usual web host: nginx to app.service on 127.0.0.1:3000.
pub fn web(id: &str, site: &str) -> Host {
    nginx(id, site, "http://127.0.0.1:3000")
        .unit("app.service", "active", "running", "upstream")
        .tcp("127.0.0.1", 3000, "app.service")
}

/// nginx to php8.2-fpm on its default socket.
pub fn php(id: &str, site: &str) -> Host {
    nginx(id, site, "fastcgi://unix:/run/php/php8.2-fpm.sock")
        .unit("php8.2-fpm.service", "active", "running", "upstream")
        .unix("/run/php/php8.2-fpm.sock", "php8.2-fpm.service", 0o660, 33)
}

/// Splits `scheme://host:port` or `scheme://unix:/path` into target fields.
fn target(upstream: &str) -> UpstreamTarget {
    let (protocol, address) = upstream.split_once("://").unwrap_or(("http", upstream));
    let mut t = UpstreamTarget {
        protocol: protocol.into(),
        address: address.into(),
        ..Default::default()
    };
    if let Some(path) = address.strip_prefix("unix:") {
        t.unix_path = path.trim_end_matches(':').into();
    } else if let Some((host, port)) = address.rsplit_once(':') {
        t.host = host.trim_matches(['[', ']']).into();
        t.port = port.parse().unwrap_or(0);
    } else {
        t.host = address.into();
    }
    t
}

impl Host {
    /// Milliseconds before the report's "now".
    pub fn ago(&self, ms: i64) -> i64 {
        self.now - ms
    }

    fn st(&mut self) -> &mut HostReport {
        &mut self.report
    }

    /// A proxy of `kind` run by `unit`, serving the site on 80/443.
    pub fn proxy(mut self, kind: &str, unit: &str, upstream: &str) -> Self {
        let mut t = target(upstream);
        t.server_names = vec![self.site.clone()];
        t.location = "/".into();
        t.directive = if t.protocol == "fastcgi" {
            "fastcgi_pass"
        } else {
            "proxy_pass"
        }
        .into();
        let cfg = ProxyConfig {
            kind: kind.into(),
            unit: unit.into(),
            config_hash: "ab12".into(),
            test: Some(ConfigTest {
                ran: true,
                ok: true,
                output: String::new(),
            }),
            servers: vec![VirtualServer {
                names: vec![self.site.clone()],
                listens: vec!["80".into(), "443 ssl".into()],
                ..Default::default()
            }],
            targets: vec![t],
            ..Default::default()
        };
        self.st()
            .proxy_config
            .get_or_insert_default()
            .proxies
            .push(cfg);
        self.unit(unit, "active", "running", "proxy")
            .tcp("0.0.0.0", 80, unit)
            .tcp("0.0.0.0", 443, unit)
    }

    /// A systemd unit; stopping one removes its listeners.
    pub fn unit(mut self, name: &str, active: &str, sub: &str, role: &str) -> Self {
        let changed = self.ago(90_000);
        let units = &mut self.st().systemd.get_or_insert_default().units;
        units.retain(|u| u.name != name);
        units.push(UnitState {
            name: name.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            result: if active == "failed" {
                "exit-code"
            } else {
                "success"
            }
            .into(),
            state_change_ms: changed,
            roles: vec![role.into()],
            ..Default::default()
        });
        if active != "active" {
            self = self.no_listeners(name);
        }
        self
    }

    /// Sets the unit's restart counter.
    pub fn restarts(mut self, name: &str, n: u32) -> Self {
        for u in &mut self.st().systemd.get_or_insert_default().units {
            if u.name == name {
                u.n_restarts = n;
            }
        }
        self
    }

    /// A TCP listener owned by `unit`.
    pub fn tcp(mut self, addr: &str, port: u32, unit: &str) -> Self {
        let l = Listener {
            family: if addr.contains(':') { "tcp6" } else { "tcp4" }.into(),
            address: addr.into(),
            port,
            unit: unit.into(),
            process: unit.trim_end_matches(".service").into(),
            backlog: 511,
            ..Default::default()
        };
        self.st().sockets.get_or_insert_default().listeners.push(l);
        self
    }

    /// A unix listener owned by `unit` with `mode` and owner `uid`.
    pub fn unix(mut self, path: &str, unit: &str, mode: u32, uid: u32) -> Self {
        let l = Listener {
            family: "unix".into(),
            address: path.into(),
            unit: unit.into(),
            process: "php-fpm8.2".into(),
            mode,
            uid,
            gid: uid,
            backlog: 511,
            ..Default::default()
        };
        self.st().sockets.get_or_insert_default().listeners.push(l);
        self
    }

    /// Removes every listener of `unit`.
    pub fn no_listeners(mut self, unit: &str) -> Self {
        self.st()
            .sockets
            .get_or_insert_default()
            .listeners
            .retain(|l| l.unit != unit);
        self
    }

    /// An nginx error-log signal labelled `cause` with the standard line around `msg`.
    pub fn ngx(self, cause: &str, level: &str, msg: &str, upstream: &str) -> Self {
        let line = ngx_line(&self.site, level, msg, upstream);
        self.signal(cause, level, &line, upstream)
    }

    /// A proxy-log signal with its sample line.
    pub fn signal(mut self, cause: &str, level: &str, sample: &str, upstream: &str) -> Self {
        let s = LogSignal {
            proxy: "nginx".into(),
            upstream: upstream.into(),
            cause: cause.into(),
            count: 12,
            level: level.into(),
            first_at_ms: self.ago(60_000),
            last_at_ms: self.ago(2_000),
            server: self.site.clone(),
            status: 0,
            samples: vec![sample.into()],
        };
        let log = self.st().proxy_log.get_or_insert_default();
        log.signals.push(s);
        log.files = vec!["/var/log/nginx/error.log".into()];
        log.lines_read += 12;
        self
    }

    /// An access-log status count for the site.
    pub fn access(mut self, status: u32, upstream_status: &str, count: u32) -> Self {
        let c = StatusCount {
            vhost: self.site.clone(),
            status,
            upstream_status: upstream_status.into(),
            count,
            last_at_ms: self.ago(2_000),
        };
        self.st().access_log.get_or_insert_default().counts.push(c);
        self
    }

    /// A direct probe of an upstream target.
    pub fn probe(
        mut self,
        address: &str,
        outcome: &str,
        phase: &str,
        status: u32,
        detail: &str,
    ) -> Self {
        let at = self.ago(3_000);
        let mut t = target(address);
        t.address = address.into();
        let p = DirectProbe {
            target: Some(t),
            at_ms: at,
            outcome: outcome.into(),
            phase: phase.into(),
            status,
            detail: detail.into(),
            elapsed_ms: 2,
            ..Default::default()
        };
        self.st().probes.get_or_insert_default().probes.push(p);
        self
    }

    /// A journal entry of `unit` at syslog `priority`.
    pub fn journal(mut self, unit: &str, priority: u32, msg: &str) -> Self {
        let e = JournalEntry {
            at_ms: self.ago(20_000),
            unit: unit.into(),
            priority,
            identifier: unit.trim_end_matches(".service").into(),
            message: msg.into(),
        };
        self.st().journal.get_or_insert_default().entries.push(e);
        self
    }

    /// A unit lifecycle event `ago_ms` before now.
    pub fn event(mut self, unit: &str, kind: &str, ago_ms: i64, detail: &str) -> Self {
        let e = UnitEvent {
            at_ms: self.ago(ago_ms),
            unit: unit.into(),
            kind: kind.into(),
            detail: detail.into(),
        };
        self.st().journal.get_or_insert_default().events.push(e);
        self
    }

    /// A DNS answer for an upstream name.
    pub fn dns(mut self, name: &str, addrs: &[&str], error: &str) -> Self {
        let a = DnsAnswer {
            name: name.into(),
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            error: error.into(),
            purpose: "upstream".into(),
            ..Default::default()
        };
        self.st().dns.get_or_insert_default().answers.push(a);
        self
    }

    /// One of the host's addresses.
    pub fn addr(mut self, ip: &str) -> Self {
        self.st().addresses.push(ip.into());
        self
    }

    /// The proxy's config test result.
    pub fn config_test(mut self, ok: bool, output: &str) -> Self {
        for p in &mut self.st().proxy_config.get_or_insert_default().proxies {
            p.test = Some(ConfigTest {
                ran: true,
                ok,
                output: output.into(),
            });
        }
        self
    }

    /// A cross-probe of the site's public URL from this host.
    pub fn sees(self, outcome: &str, status: u32, fingerprint: &str) -> Self {
        self.cross("public", outcome, status, fingerprint)
    }

    /// A cross-probe of `target` (`public` or `origin/<host>`).
    pub fn cross(mut self, target: &str, outcome: &str, status: u32, fingerprint: &str) -> Self {
        let o = EdgeObservation {
            site: self.site.clone(),
            url: format!("https://{}/", self.site),
            vantage: format!("agent/{}", self.report.host_id),
            target: target.into(),
            at_ms: self.ago(1_000),
            outcome: outcome.into(),
            status,
            fingerprint: fingerprint.into(),
            ..Default::default()
        };
        self.st()
            .cross_probes
            .get_or_insert_default()
            .observations
            .push(o);
        self
    }

    /// Any other change to the report.
    pub fn edit(mut self, f: impl FnOnce(&mut HostReport)) -> Self {
        f(self.st());
        self
    }
}
