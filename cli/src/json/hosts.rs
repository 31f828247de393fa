//! `--json` shapes of hosts: the summary row and, for `hosts show`, the
//! host's current state flattened into plain lists.

use std::collections::BTreeMap;

use gw502_proto::v1 as pb;
use serde::Serialize;

use crate::render::rfc3339;

/// One reporting host.
#[derive(Debug, Clone, Serialize)]
pub struct HostJson {
    /// Host id (the agent certificate's name).
    pub host: String,
    /// Agent version.
    pub agent_version: String,
    /// First report.
    pub first_seen: Option<String>,
    /// Latest report.
    pub last_seen: Option<String>,
    /// Reporting interval in milliseconds.
    pub interval_ms: u32,
    /// No report for three intervals.
    pub stale: bool,
    /// Reports since the collector started.
    pub reports: u64,
    /// Reports the agent dropped because its spool was full.
    pub spool_dropped: u64,
    /// The host's interface addresses.
    pub addresses: Vec<String>,
    /// Labels from the collector's config (`{}` when none).
    pub labels: BTreeMap<String, String>,
}

/// `hosts show --json`.
#[derive(Debug, Clone, Serialize)]
pub struct HostDetailJson {
    /// The summary.
    pub host: HostJson,
    /// The current merged state.
    pub state: HostStateJson,
}

/// A host's current state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStateJson {
    /// Sections that could not be read, with the reason.
    pub unavailable: BTreeMap<String, String>,
    /// Watched systemd units.
    pub units: Vec<UnitJson>,
    /// Listening sockets.
    pub listeners: Vec<ListenerJson>,
    /// Proxies and their config test.
    pub proxies: Vec<ProxyJson>,
    /// Upstream targets named by the proxy configs.
    pub targets: Vec<TargetJson>,
    /// Latest direct probes of those targets.
    pub probes: Vec<DirectProbeJson>,
    /// Name resolutions.
    pub dns: Vec<DnsJson>,
    /// Proxy error-log signals.
    pub log_signals: Vec<LogSignalJson>,
    /// Recent error-level journal entries.
    pub journal: Vec<JournalJson>,
}

/// A systemd unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitJson {
    /// Unit name.
    pub name: String,
    /// active, failed, ...
    pub active_state: String,
    /// running, dead, ...
    pub sub_state: String,
    /// success, exit-code, ...
    pub result: String,
    /// Restart counter.
    pub restarts: u32,
    /// Why it is watched.
    pub roles: Vec<String>,
    /// Last state change.
    pub state_changed_at: Option<String>,
}

/// A listening socket.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerJson {
    /// tcp4, tcp6, unix.
    pub family: String,
    /// Address or socket path.
    pub address: String,
    /// Port (0 for unix).
    pub port: u32,
    /// Owning process.
    pub process: String,
    /// Owning unit.
    pub unit: String,
    /// Accept queue length.
    pub queued: u32,
    /// Accept backlog.
    pub backlog: u32,
}

/// A proxy and its config test.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyJson {
    /// nginx, haproxy, apache, caddy.
    pub kind: String,
    /// Its unit.
    pub unit: String,
    /// Result of the config test; `null` when not run.
    pub config_test_ok: Option<bool>,
    /// Config test output.
    pub config_test_output: String,
    /// When the config last changed.
    pub config_changed_at: Option<String>,
}

/// An upstream target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetJson {
    /// http, fastcgi, ...
    pub protocol: String,
    /// As written in the config.
    pub address: String,
    /// Upstream group.
    pub group: String,
    /// Virtual servers routing to it.
    pub server_names: Vec<String>,
    /// Location.
    pub location: String,
}

/// A direct probe of a target.
#[derive(Debug, Clone, Serialize)]
pub struct DirectProbeJson {
    /// Target address as written.
    pub target: String,
    /// When.
    pub at: Option<String>,
    /// PROBES.md outcome word.
    pub outcome: String,
    /// connect, tls, request, response.
    pub phase: String,
    /// HTTP status (0: none).
    pub status: u32,
    /// Duration.
    pub elapsed_ms: u32,
    /// Details.
    pub detail: String,
}

/// A name resolution.
#[derive(Debug, Clone, Serialize)]
pub struct DnsJson {
    /// Name.
    pub name: String,
    /// upstream or site.
    pub purpose: String,
    /// Answers.
    pub addresses: Vec<String>,
    /// Resolver error, empty when none.
    pub error: String,
}

/// Proxy error-log lines of one (proxy, upstream, cause).
#[derive(Debug, Clone, Serialize)]
pub struct LogSignalJson {
    /// nginx, haproxy, ...
    pub proxy: String,
    /// Upstream named in the lines.
    pub upstream: String,
    /// Cause or candidates joined by `|`.
    pub cause: String,
    /// Lines.
    pub count: u32,
    /// Status answered, 0 if unknown.
    pub status: u32,
    /// First line.
    pub first_at: Option<String>,
    /// Last line.
    pub last_at: Option<String>,
    /// Sample lines.
    pub samples: Vec<String>,
}

/// A journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct JournalJson {
    /// When.
    pub at: Option<String>,
    /// Unit.
    pub unit: String,
    /// Syslog priority.
    pub priority: u32,
    /// Message.
    pub message: String,
}

/// Converts a host summary.
pub fn host(h: &pb::HostSummary) -> HostJson {
    HostJson {
        host: h.host_id.clone(),
        agent_version: h.agent_version.clone(),
        first_seen: rfc3339(h.first_seen_ms),
        last_seen: rfc3339(h.last_seen_ms),
        interval_ms: h.interval_ms,
        stale: h.stale,
        reports: h.reports,
        spool_dropped: h.spool_dropped,
        addresses: h.addresses.clone(),
        labels: h.labels.clone().into_iter().collect(),
    }
}

/// Converts `GetHost`'s answer.
pub fn host_detail(d: &pb::HostDetail) -> HostDetailJson {
    HostDetailJson {
        host: host(&d.summary.clone().unwrap_or_default()),
        state: d.state.as_ref().map(state).unwrap_or_default(),
    }
}

fn state(r: &pb::HostReport) -> HostStateJson {
    let mut s = HostStateJson::default();
    let mut unavailable = |name: &str, reason: &str| {
        if !reason.is_empty() {
            s.unavailable.insert(name.to_owned(), reason.to_owned());
        }
    };
    if let Some(x) = &r.systemd {
        unavailable("systemd", &x.unavailable);
    }
    if let Some(x) = &r.sockets {
        unavailable("sockets", &x.unavailable);
    }
    if let Some(x) = &r.proxy_config {
        unavailable("proxy_config", &x.unavailable);
    }
    if let Some(x) = &r.probes {
        unavailable("probes", &x.unavailable);
    }
    if let Some(x) = &r.dns {
        unavailable("dns", &x.unavailable);
    }
    if let Some(x) = &r.proxy_log {
        unavailable("proxy_log", &x.unavailable);
    }
    if let Some(x) = &r.journal {
        unavailable("journal", &x.unavailable);
    }
    if let Some(x) = &r.containers {
        unavailable("containers", &x.unavailable);
    }
    let sys = r.systemd.clone().unwrap_or_default();
    s.units = sys
        .units
        .iter()
        .map(|u| UnitJson {
            name: u.name.clone(),
            active_state: u.active_state.clone(),
            sub_state: u.sub_state.clone(),
            result: u.result.clone(),
            restarts: u.n_restarts,
            roles: u.roles.clone(),
            state_changed_at: rfc3339(u.state_change_ms),
        })
        .collect();
    s.listeners = r
        .sockets
        .iter()
        .flat_map(|x| &x.listeners)
        .map(|l| ListenerJson {
            family: l.family.clone(),
            address: l.address.clone(),
            port: l.port,
            process: l.process.clone(),
            unit: l.unit.clone(),
            queued: l.queued,
            backlog: l.backlog,
        })
        .collect();
    for p in r.proxy_config.iter().flat_map(|x| &x.proxies) {
        let test = p.test.clone().unwrap_or_default();
        s.proxies.push(ProxyJson {
            kind: p.kind.clone(),
            unit: p.unit.clone(),
            config_test_ok: test.ran.then_some(test.ok),
            config_test_output: test.output,
            config_changed_at: rfc3339(p.changed_at_ms),
        });
        s.targets.extend(p.targets.iter().map(target));
    }
    s.probes = r
        .probes
        .iter()
        .flat_map(|x| &x.probes)
        .map(|p| DirectProbeJson {
            target: p
                .target
                .as_ref()
                .map(|t| t.address.clone())
                .unwrap_or_default(),
            at: rfc3339(p.at_ms),
            outcome: p.outcome.clone(),
            phase: p.phase.clone(),
            status: p.status,
            elapsed_ms: p.elapsed_ms,
            detail: p.detail.clone(),
        })
        .collect();
    s.dns = r
        .dns
        .iter()
        .flat_map(|x| &x.answers)
        .map(|a| DnsJson {
            name: a.name.clone(),
            purpose: a.purpose.clone(),
            addresses: a.addresses.clone(),
            error: a.error.clone(),
        })
        .collect();
    s.log_signals = r
        .proxy_log
        .iter()
        .flat_map(|x| &x.signals)
        .map(|l| LogSignalJson {
            proxy: l.proxy.clone(),
            upstream: l.upstream.clone(),
            cause: l.cause.clone(),
            count: l.count,
            status: l.status,
            first_at: rfc3339(l.first_at_ms),
            last_at: rfc3339(l.last_at_ms),
            samples: l.samples.clone(),
        })
        .collect();
    s.journal = r
        .journal
        .iter()
        .flat_map(|x| &x.entries)
        .map(|j| JournalJson {
            at: rfc3339(j.at_ms),
            unit: j.unit.clone(),
            priority: j.priority,
            message: j.message.clone(),
        })
        .collect();
    s
}

fn target(t: &pb::UpstreamTarget) -> TargetJson {
    TargetJson {
        protocol: t.protocol.clone(),
        address: t.address.clone(),
        group: t.group.clone(),
        server_names: t.server_names.clone(),
        location: t.location.clone(),
    }
}
