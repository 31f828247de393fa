//! Builders for hosts: nginx/HAProxy/Apache/Caddy configs, units,
//! listeners, log signals, access counts, probes, journal entries and DNS.

use gw502_proto::v1::*;

use super::super::HostEvidence;
use super::super::target::Target;
use super::site_builder::{NOW, T0, ngx};

pub(super) struct Host(pub HostEvidence);

/// A host with every section present and empty.
pub(super) fn host(id: &str) -> Host {
    Host(HostEvidence {
        host_id: id.into(),
        last_seen_ms: NOW - 5_000,
        interval_ms: 10_000,
        state: HostReport {
            host_id: id.into(),
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
            ..HostReport::default()
        },
    })
}

/// nginx fronting shop.example, proxying to `upstream` (a config address such as
/// `http://127.0.0.1:3000` or `fastcgi://unix:/run/php/php8.2-fpm.sock`).
pub(super) fn nginx(id: &str, upstream: &str) -> Host {
    host(id).proxy("nginx", "nginx.service", upstream)
}

/// The usual web host: nginx to app.service on 127.0.0.1:3000.
pub(super) fn web(id: &str) -> Host {
    nginx(id, "http://127.0.0.1:3000")
        .unit("app.service", "active", "running", "upstream")
        .tcp("127.0.0.1", 3000, "app.service")
}

/// nginx to php8.2-fpm on its default socket.
pub(super) fn php(id: &str) -> Host {
    nginx(id, "fastcgi://unix:/run/php/php8.2-fpm.sock")
        .unit("php8.2-fpm.service", "active", "running", "upstream")
        .unix(
            "/run/php/php8.2-fpm.sock",
            "php8.2-fpm.service",
            0o660,
            33,
            33,
        )
}

impl Host {
    fn st(&mut self) -> &mut HostReport {
        &mut self.0.state
    }
    pub fn proxy(mut self, kind: &str, unit: &str, upstream: &str) -> Self {
        let t = Target::parse(upstream).unwrap_or_default();
        let protocol = upstream.split("://").next().unwrap_or("http").to_string();
        let target = UpstreamTarget {
            protocol,
            address: upstream.split("://").nth(1).unwrap_or(upstream).into(),
            host: t.host.clone(),
            port: u32::from(t.port.unwrap_or(0)),
            unix_path: t.unix.clone().unwrap_or_default(),
            server_names: vec!["shop.example".into()],
            location: "/".into(),
            directive: "proxy_pass".into(),
            ..Default::default()
        };
        let server = VirtualServer {
            names: vec!["shop.example".into()],
            listens: vec!["80".into(), "443 ssl".into()],
            ..Default::default()
        };
        let cfg = ProxyConfig {
            kind: kind.into(),
            unit: unit.into(),
            config_hash: "ab12".into(),
            test: Some(ConfigTest {
                ran: true,
                ok: true,
                output: String::new(),
            }),
            servers: vec![server],
            targets: vec![target],
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
    pub fn unit(mut self, name: &str, active: &str, sub: &str, role: &str) -> Self {
        let units = &mut self.st().systemd.get_or_insert_default().units;
        units.retain(|u| u.name != name);
        let result = if active == "failed" {
            "exit-code"
        } else {
            "success"
        };
        units.push(UnitState {
            name: name.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            result: result.into(),
            state_change_ms: T0 - 30_000,
            roles: vec![role.into()],
            ..Default::default()
        });
        if active != "active" {
            self.st()
                .sockets
                .get_or_insert_default()
                .listeners
                .retain(|l| l.unit != name);
        }
        self
    }
    pub fn restarts(mut self, name: &str, n: u32) -> Self {
        for u in self
            .st()
            .systemd
            .get_or_insert_default()
            .units
            .iter_mut()
            .filter(|u| u.name == name)
        {
            u.n_restarts = n;
        }
        self
    }
    pub fn tcp(mut self, addr: &str, port: u32, unit: &str) -> Self {
        let family = if addr.contains(':') { "tcp6" } else { "tcp4" };
        let l = Listener {
            family: family.into(),
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
    pub fn no_listeners(mut self, unit: &str) -> Self {
        self.st()
            .sockets
            .get_or_insert_default()
            .listeners
            .retain(|l| l.unit != unit);
        self
    }
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
            first_at_ms: T0,
            last_at_ms: NOW - 8_000,
            server: "shop.example".into(),
            status,
            samples: vec![sample.into()],
        };
        self.st().proxy_log.get_or_insert_default().signals.push(s);
        self
    }
    /// An nginx signal with the standard line around `msg`.
    pub fn ngx(self, cause: &str, level: &str, msg: &str, upstream: &str) -> Self {
        self.signal("nginx", cause, 0, &ngx(level, msg, upstream), upstream)
    }
    pub fn access(mut self, status: u32, upstream_status: &str, count: u32) -> Self {
        let c = StatusCount {
            vhost: "shop.example".into(),
            status,
            upstream_status: upstream_status.into(),
            count,
            last_at_ms: NOW - 8_000,
        };
        self.st().access_log.get_or_insert_default().counts.push(c);
        self
    }
    pub fn probe(
        mut self,
        address: &str,
        outcome: &str,
        phase: &str,
        status: u32,
        detail: &str,
    ) -> Self {
        let t = Target::parse(address).unwrap_or_default();
        let target = UpstreamTarget {
            address: address.into(),
            host: t.host,
            port: u32::from(t.port.unwrap_or(0)),
            unix_path: t.unix.unwrap_or_default(),
            ..Default::default()
        };
        let p = DirectProbe {
            target: Some(target),
            at_ms: NOW - 7_000,
            outcome: outcome.into(),
            phase: phase.into(),
            status,
            detail: detail.into(),
            ..Default::default()
        };
        self.st().probes.get_or_insert_default().probes.push(p);
        self
    }
    pub fn journal(mut self, unit: &str, priority: u32, msg: &str) -> Self {
        let e = JournalEntry {
            at_ms: NOW - 20_000,
            unit: unit.into(),
            priority,
            identifier: unit.trim_end_matches(".service").into(),
            message: msg.into(),
        };
        self.st().journal.get_or_insert_default().entries.push(e);
        self
    }
    pub fn event(mut self, unit: &str, kind: &str, at: i64, detail: &str) -> Self {
        let e = UnitEvent {
            at_ms: at,
            unit: unit.into(),
            kind: kind.into(),
            detail: detail.into(),
        };
        self.st().journal.get_or_insert_default().events.push(e);
        self
    }
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
    pub fn addr(mut self, ip: &str) -> Self {
        self.st().addresses.push(ip.into());
        self
    }
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
    pub fn edit<F: FnOnce(&mut HostReport)>(mut self, f: F) -> Self {
        f(self.st());
        self
    }
    pub fn stale(mut self) -> Self {
        self.0.last_seen_ms = NOW - 600_000;
        self
    }
}
