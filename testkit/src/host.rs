//! [`Host`]: one host's `HostReport` under construction, shaped the way the
//! agent's sources fill it (labels and samples from TAXONOMY §3): proxy
//! config, systemd units, listeners, log signals, access counts, direct
//! probes, journal entries, DNS answers and cross-probes. Every section is
//! present; every time is an offset from the host's [`Clock`].

use gw502_proto::v1::{
    AccessLogSection, ConfigTest, CrossProbeSection, DirectProbe, DnsAnswer, DnsSection,
    HostReport, JournalEntry, JournalSection, Listener, LogSignal, ProbesSection, ProxyConfig,
    ProxyConfigSection, ProxyLogSection, SocketsSection, StatusCount, SystemdSection, UnitEvent,
    UnitState, UpstreamTarget, VirtualServer,
};

use crate::clock::Clock;
use crate::observe::{ngx_line, observation};

/// When the collector last heard from the agent, before now.
const RECEIVED_AGO: i64 = 5_000;
/// A stale agent's last report, before now.
const STALE_AGO: i64 = 600_000;
/// Unit state changes happen this long before the failure starts.
const CHANGE_BEFORE_T0: i64 = 30_000;
/// Last line of a failing signal and last access count, before now.
const LAST_AGO: i64 = 8_000;
/// Direct probes, before now.
const PROBE_AGO: i64 = 7_000;
/// Journal entries, before now.
const JOURNAL_AGO: i64 = 20_000;
/// Cross-probes, before now.
const CROSS_AGO: i64 = 1_000;

/// Unrelated services of [`Host::noise`]: unit, address, port.
pub const NOISE: &[(&str, &str, u32)] = &[
    ("prometheus-alertmanager.service", "::", 9093),
    ("postgresql@15-main.service", "127.0.0.1", 5432),
    ("prometheus-node-exporter.service", "::", 9100),
    ("ssh.service", "0.0.0.0", 22),
    ("syncthing.service", "127.0.0.1", 41234),
];

/// One host's report under construction.
#[derive(Debug, Clone)]
pub struct Host {
    /// The report (without `seq`/`agent_instance`, set when sent).
    pub report: HostReport,
    /// The site its proxy serves.
    pub site: String,
    /// The scenario's time base.
    pub clock: Clock,
    /// When the collector last received a report from this host.
    pub received_ms: i64,
}

/// A host with every section present and empty, serving `site`.
pub fn host(id: &str, site: &str, clock: Clock) -> Host {
    Host {
        report: HostReport {
            host_id: id.into(),
            agent_version: "testkit".into(),
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
        clock,
        received_ms: clock.ago(RECEIVED_AGO),
    }
}

/// nginx serving `site`, proxying to `upstream` (`http://127.0.0.1:3000`,
/// `fastcgi://unix:/run/php/php8.2-fpm.sock`).
pub fn nginx(id: &str, site: &str, upstream: &str, clock: Clock) -> Host {
    host(id, site, clock).proxy("nginx", "nginx.service", upstream)
}

/// The usual web host: nginx to app.service on 127.0.0.1:3000.
pub fn web(id: &str, site: &str, clock: Clock) -> Host {
    nginx(id, site, "http://127.0.0.1:3000", clock)
        .unit("app.service", "active", "running", "upstream")
        .tcp("127.0.0.1", 3000, "app.service")
}

/// nginx to php8.2-fpm on its default socket.
pub fn php(id: &str, site: &str, clock: Clock) -> Host {
    nginx(id, site, "fastcgi://unix:/run/php/php8.2-fpm.sock", clock)
        .unit("php8.2-fpm.service", "active", "running", "upstream")
        .unix(
            "/run/php/php8.2-fpm.sock",
            "php8.2-fpm.service",
            0o660,
            33,
            33,
        )
}

/// Splits `scheme://host:port`, `host:port` or `scheme://unix:/path` into target fields.
fn target(upstream: &str) -> UpstreamTarget {
    let (protocol, address) = upstream.split_once("://").unwrap_or(("http", upstream));
    let mut t = UpstreamTarget {
        protocol: protocol.into(),
        address: address.into(),
        ..Default::default()
    };
    if let Some(path) = address.strip_prefix("unix:") {
        t.unix_path = path.trim_end_matches(':').into();
    } else if let Some((host, port)) = address.trim_end_matches('/').rsplit_once(':') {
        t.host = host.trim_matches(['[', ']']).into();
        t.port = port.parse().unwrap_or(0);
    } else {
        t.host = address.trim_end_matches('/').into();
    }
    t
}

impl Host {
    /// Milliseconds before the clock's "now".
    pub fn ago(&self, ms: i64) -> i64 {
        self.clock.ago(ms)
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

    /// Another proxy installed but not in use (an nginx host with Apache
    /// installed): its stock config (a default virtual server without a
    /// name), its unit inactive (disabled) or masked.
    pub fn idle_proxy(mut self, kind: &str, unit: &str, masked: bool) -> Self {
        let cfg = ProxyConfig {
            kind: kind.into(),
            unit: unit.into(),
            config_hash: "cd34".into(),
            servers: vec![VirtualServer {
                listens: vec!["80".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        self.st()
            .proxy_config
            .get_or_insert_default()
            .proxies
            .push(cfg);
        let h = self.unit(unit, "inactive", "dead", "proxy");
        if !masked {
            return h;
        }
        h.edit(|s| {
            for u in &mut s.systemd.get_or_insert_default().units {
                if u.name == unit {
                    u.load_state = "masked".into();
                }
            }
        })
    }

    /// A systemd unit that changed state shortly before the failure;
    /// stopping one removes its listeners.
    pub fn unit(mut self, name: &str, active: &str, sub: &str, role: &str) -> Self {
        let changed = self.clock.t0 - CHANGE_BEFORE_T0;
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

    /// The services a real host runs next to the site, none of them in its
    /// chain: an alert manager, a database, an exporter, sshd and something
    /// on a high port, each a running unit owning its listener (role
    /// `listener`, as the agent reports a unit it found through a socket).
    pub fn noise(self) -> Self {
        NOISE.iter().fold(self, |h, (unit, addr, port)| {
            h.unit(unit, "active", "running", "listener")
                .tcp(addr, *port, unit)
        })
    }

    /// A cold-start candidate as the agent reports it: a service it never
    /// saw listen, failed, stopped or enabled but inactive (role
    /// `candidate`), owning no listener.
    pub fn candidate(self, name: &str, active: &str, sub: &str) -> Self {
        self.unit(name, active, sub, "candidate").no_listeners(name)
    }

    /// Sets a unit's `ExecStart` argv (split on spaces).
    pub fn exec_start(mut self, name: &str, command: &str) -> Self {
        for u in &mut self.st().systemd.get_or_insert_default().units {
            if u.name == name {
                u.exec_start = command.split(' ').map(str::to_string).collect();
            }
        }
        self
    }

    /// Sets a unit's `WorkingDirectory`.
    pub fn workdir(mut self, name: &str, dir: &str) -> Self {
        for u in &mut self.st().systemd.get_or_insert_default().units {
            if u.name == name {
                u.working_directory = dir.into();
            }
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

    /// A unix listener owned by `unit` with `mode`, `uid` and `gid`.
    pub fn unix(mut self, path: &str, unit: &str, mode: u32, uid: u32, gid: u32) -> Self {
        let l = Listener {
            family: "unix".into(),
            address: path.into(),
            unit: unit.into(),
            process: "php-fpm8.2".into(),
            mode,
            uid,
            gid,
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

    /// A proxy error-log signal of `proxy` labelled `cause` (a word or a
    /// `|`-joined candidate set; empty for an unlabelled line), from the
    /// failure's start until shortly before now.
    pub fn signal(
        mut self,
        proxy: &str,
        cause: &str,
        status: u32,
        sample: &str,
        upstream: &str,
    ) -> Self {
        let s = LogSignal {
            proxy: proxy.into(),
            upstream: upstream.into(),
            cause: cause.into(),
            count: 12,
            level: "error".into(),
            first_at_ms: self.clock.t0,
            last_at_ms: self.ago(LAST_AGO),
            server: self.site.clone(),
            status,
            samples: vec![sample.into()],
        };
        let log = self.st().proxy_log.get_or_insert_default();
        log.signals.push(s);
        log.files = vec!["/var/log/nginx/error.log".into()];
        log.lines_read += 12;
        self
    }

    /// An nginx error-log signal labelled `cause` with the standard line around `msg`.
    pub fn ngx(self, cause: &str, level: &str, msg: &str, upstream: &str) -> Self {
        let line = ngx_line(&self.site, level, msg, upstream);
        let mut h = self.signal("nginx", cause, 0, &line, upstream);
        if let Some(s) = h.st().proxy_log.get_or_insert_default().signals.last_mut() {
            s.level = level.into();
        }
        h
    }

    /// An access-log status count for the site.
    pub fn access(mut self, status: u32, upstream_status: &str, count: u32) -> Self {
        let c = StatusCount {
            vhost: self.site.clone(),
            status,
            upstream_status: upstream_status.into(),
            count,
            last_at_ms: self.ago(LAST_AGO),
        };
        self.st().access_log.get_or_insert_default().counts.push(c);
        self
    }

    /// A direct probe of an upstream target (`127.0.0.1:3000`, `unix:/run/x.sock`).
    pub fn probe(
        mut self,
        address: &str,
        outcome: &str,
        phase: &str,
        status: u32,
        detail: &str,
    ) -> Self {
        let mut t = target(address);
        t.address = address.into();
        let p = DirectProbe {
            target: Some(t),
            at_ms: self.ago(PROBE_AGO),
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
            at_ms: self.ago(JOURNAL_AGO),
            unit: unit.into(),
            priority,
            identifier: unit.trim_end_matches(".service").into(),
            message: msg.into(),
        };
        self.st().journal.get_or_insert_default().entries.push(e);
        self
    }

    /// A unit lifecycle event `ago_ms` before now.
    pub fn event(self, unit: &str, kind: &str, ago_ms: i64, detail: &str) -> Self {
        let at = self.ago(ago_ms);
        self.event_at(unit, kind, at, detail)
    }

    /// A unit lifecycle event at `at_ms` (epoch ms, e.g. `clock.t0 + 5_000`).
    pub fn event_at(mut self, unit: &str, kind: &str, at_ms: i64, detail: &str) -> Self {
        let e = UnitEvent {
            at_ms,
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
        let o = observation(
            &self.site,
            &format!("https://{}/", self.site),
            &format!("agent/{}", self.report.host_id),
            target,
            self.ago(CROSS_AGO),
            outcome,
            status,
            fingerprint,
        );
        self.st()
            .cross_probes
            .get_or_insert_default()
            .observations
            .push(o);
        self
    }

    /// An agent that stopped reporting ten minutes ago.
    pub fn stale(mut self) -> Self {
        self.received_ms = self.ago(STALE_AGO);
        self
    }

    /// Any other change to the report.
    pub fn edit(mut self, f: impl FnOnce(&mut HostReport)) -> Self {
        f(self.st());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_follow_the_clock() {
        let c = Clock::fixed();
        let h = web("web1", "shop.example", c)
            .ngx(
                "timeout",
                "error",
                "upstream timed out",
                "http://127.0.0.1:3000/",
            )
            .event_at("app.service", "stop", c.t0, "Stopped");
        let s = &h.report.proxy_log.as_ref().expect("log").signals[0];
        assert_eq!((s.first_at_ms, s.last_at_ms), (c.t0, c.now - LAST_AGO));
        let units = &h.report.systemd.as_ref().expect("systemd").units;
        assert!(
            units
                .iter()
                .all(|u| u.state_change_ms == c.t0 - CHANGE_BEFORE_T0)
        );
        assert_eq!(
            h.report.journal.as_ref().expect("journal").events[0].at_ms,
            c.t0
        );
        assert!(h.clone().stale().received_ms < h.received_ms);
    }

    #[test]
    fn stopping_a_unit_drops_its_listeners() {
        let h = web("web1", "shop.example", Clock::fixed()).unit(
            "app.service",
            "inactive",
            "dead",
            "upstream",
        );
        let listeners = &h.report.sockets.as_ref().expect("sockets").listeners;
        assert!(listeners.iter().all(|l| l.unit != "app.service"));
        assert!(listeners.iter().any(|l| l.unit == "nginx.service"));
    }

    #[test]
    fn targets_parse_the_shapes_proxies_write() {
        let t = target("fastcgi://unix:/run/php/php8.2-fpm.sock:");
        assert_eq!(
            (t.protocol.as_str(), t.unix_path.as_str()),
            ("fastcgi", "/run/php/php8.2-fpm.sock")
        );
        let t = target("[::1]:3000");
        assert_eq!((t.host.as_str(), t.port), ("::1", 3000));
        let t = target("http://127.0.0.1:3000/");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 3000));
    }
}
