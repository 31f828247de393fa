//! Text views of hosts, sites, deliveries and explain results.

use std::fmt::Write as _;

use gw502_proto::v1 as pb;

use super::incidents::{indent, verdict_block};
use super::table::Table;
use super::{age, duration_ms, escape, time_or_dash};
use crate::labels;

/// The `hosts` table.
pub fn hosts(hosts: &[pb::HostSummary], now_ms: i64) -> String {
    if hosts.is_empty() {
        return "no hosts have reported yet\n".into();
    }
    let labelled = hosts.iter().any(|h| !h.labels.is_empty());
    let mut headers = vec![
        "host",
        "agent",
        "last seen",
        "interval",
        "stale",
        "reports",
        "spool drops",
    ];
    headers.extend(labelled.then_some("labels"));
    let mut t = Table::new(&headers);
    for h in hosts {
        let mut row = vec![
            h.host_id.clone(),
            h.agent_version.clone(),
            age(now_ms, h.last_seen_ms),
            duration_ms(u64::from(h.interval_ms)),
            if h.stale { "STALE".into() } else { "no".into() },
            h.reports.to_string(),
            h.spool_dropped.to_string(),
        ];
        row.extend(labelled.then(|| labels::text(&h.labels)));
        t.row(row);
    }
    t.render()
}

/// `hosts show`: the summary, then each evidence section of the current state.
pub fn host_detail(d: &pb::HostDetail, now_ms: i64) -> String {
    let s = d.summary.clone().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host {}  agent {}  last seen {} ({} ago){}",
        escape(&s.host_id),
        escape(&s.agent_version),
        time_or_dash(s.last_seen_ms),
        age(now_ms, s.last_seen_ms),
        if s.stale { "  STALE" } else { "" },
    );
    let _ = writeln!(
        out,
        "interval {}  reports {}  spool drops {}  addresses {}",
        duration_ms(u64::from(s.interval_ms)),
        s.reports,
        s.spool_dropped,
        escape(&s.addresses.join(", ")),
    );
    if !s.labels.is_empty() {
        let _ = writeln!(out, "labels {}", escape(&labels::text(&s.labels)));
    }
    let r = d.state.clone().unwrap_or_default();

    let mut t = Table::new(&["unit", "active", "sub", "result", "restarts", "changed"]);
    for u in r.systemd.iter().flat_map(|x| &x.units) {
        t.row([
            u.name.clone(),
            u.active_state.clone(),
            u.sub_state.clone(),
            u.result.clone(),
            u.n_restarts.to_string(),
            age(now_ms, u.state_change_ms),
        ]);
    }
    section(
        &mut out,
        "units",
        r.systemd.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );

    let mut t = Table::new(&["family", "address", "port", "process", "unit", "queue"]);
    for l in r.sockets.iter().flat_map(|x| &x.listeners) {
        t.row([
            l.family.clone(),
            l.address.clone(),
            if l.port == 0 {
                "-".into()
            } else {
                l.port.to_string()
            },
            l.process.clone(),
            l.unit.clone(),
            format!("{}/{}", l.queued, l.backlog),
        ]);
    }
    section(
        &mut out,
        "listeners",
        r.sockets.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );

    let mut t = Table::new(&[
        "proxy", "protocol", "target", "group", "servers", "location",
    ]);
    for p in r.proxy_config.iter().flat_map(|x| &x.proxies) {
        for target in &p.targets {
            t.row([
                p.kind.clone(),
                target.protocol.clone(),
                target.address.clone(),
                target.group.clone(),
                target.server_names.join(","),
                target.location.clone(),
            ]);
        }
    }
    section(
        &mut out,
        "proxy targets",
        r.proxy_config.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );
    for p in r.proxy_config.iter().flat_map(|x| &x.proxies) {
        if let Some(test) = p.test.as_ref().filter(|t| t.ran && !t.ok) {
            let _ = writeln!(
                out,
                "  config test of {} FAILED: {}",
                escape(&p.kind),
                super::cell(&test.output, 200)
            );
        }
    }

    let mut t = Table::new(&["target", "outcome", "phase", "status", "time", "detail"]);
    for p in r.probes.iter().flat_map(|x| &x.probes) {
        t.row([
            p.target
                .as_ref()
                .map(|t| t.address.clone())
                .unwrap_or_default(),
            p.outcome.clone(),
            p.phase.clone(),
            if p.status == 0 {
                "-".into()
            } else {
                p.status.to_string()
            },
            duration_ms(u64::from(p.elapsed_ms)),
            p.detail.clone(),
        ]);
    }
    section(
        &mut out,
        "latest probes",
        r.probes.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );

    let mut t = Table::new(&["name", "purpose", "answer"]);
    for a in r.dns.iter().flat_map(|x| &x.answers) {
        let answer = if a.error.is_empty() {
            a.addresses.join(", ")
        } else {
            format!("error: {}", a.error)
        };
        t.row([a.name.clone(), a.purpose.clone(), answer]);
    }
    section(
        &mut out,
        "dns",
        r.dns.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );

    let mut t = Table::new(&["proxy", "cause", "count", "upstream", "last", "sample"]).max_cell(80);
    for l in r.proxy_log.iter().flat_map(|x| &x.signals) {
        t.row([
            l.proxy.clone(),
            l.cause.clone(),
            l.count.to_string(),
            l.upstream.clone(),
            age(now_ms, l.last_at_ms),
            l.samples.first().cloned().unwrap_or_default(),
        ]);
    }
    section(
        &mut out,
        "recent log signals",
        r.proxy_log.as_ref().map(|x| x.unavailable.as_str()),
        t,
    );
    out
}

/// Appends one titled section: the reason it is unavailable, `none`, or the table.
fn section(out: &mut String, title: &str, unavailable: Option<&str>, table: Table) {
    let _ = writeln!(out, "\n{title}");
    match unavailable.filter(|u| !u.is_empty()) {
        Some(reason) => {
            let _ = writeln!(out, "  unavailable: {}", escape(reason));
        }
        None if table.is_empty() => out.push_str("  none\n"),
        None => out.push_str(&indent(&table.render())),
    }
}

/// The `sites` table.
pub fn sites(sites: &[pb::Site], now_ms: i64) -> String {
    if sites.is_empty() {
        return "no sites\n".into();
    }
    let labelled = sites.iter().any(|s| !s.labels.is_empty());
    let mut headers = vec!["name", "url", "origin", "hosts", "last probe"];
    headers.extend(labelled.then_some("labels"));
    let mut t = Table::new(&headers);
    for s in sites {
        let probe = s
            .last_probe
            .as_ref()
            .map(|p| {
                let status = if p.status == 0 {
                    String::new()
                } else {
                    format!("{} ", p.status)
                };
                format!("{status}{} ({} ago)", p.outcome, age(now_ms, p.at_ms))
            })
            .unwrap_or_else(|| "never".into());
        let mut row = vec![
            s.name.clone(),
            s.url.clone(),
            s.origin.clone(),
            s.hosts.join(","),
            probe,
        ];
        row.extend(labelled.then(|| labels::text(&s.labels)));
        t.row(row);
    }
    t.render()
}

/// The `deliveries` table.
pub fn deliveries(deliveries: &[pb::Delivery], now_ms: i64) -> String {
    if deliveries.is_empty() {
        return "no deliveries\n".into();
    }
    let mut t = Table::new(&[
        "id",
        "incident",
        "receiver",
        "event",
        "state",
        "attempts",
        "last attempt",
        "http",
        "error",
    ]);
    for d in deliveries {
        t.row([
            d.id.to_string(),
            d.incident_id.to_string(),
            d.receiver.clone(),
            d.event.clone(),
            d.state.clone(),
            d.attempts.to_string(),
            age(now_ms, d.last_attempt_ms),
            if d.http_status == 0 {
                "-".into()
            } else {
                d.http_status.to_string()
            },
            d.last_error.clone(),
        ]);
    }
    t.render()
}

/// `explain`: the probes just made and each verdict.
pub fn explain(e: &pb::ExplainResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "site {}  hosts {}",
        escape(&e.site),
        if e.hosts.is_empty() {
            "-".into()
        } else {
            escape(&e.hosts.join(", ")).into_owned()
        }
    );
    out.push_str("\nprobes\n");
    let mut t = Table::new(&[
        "vantage",
        "target",
        "outcome",
        "status",
        "edge",
        "body from",
        "time",
        "detail",
    ]);
    for o in &e.observations {
        t.row([
            o.vantage.clone(),
            o.target.clone(),
            o.outcome.clone(),
            if o.status == 0 {
                "-".into()
            } else {
                o.status.to_string()
            },
            o.edge.clone(),
            o.fingerprint.clone(),
            duration_ms(u64::from(
                o.timing.as_ref().map(|t| t.total_ms).unwrap_or(0),
            )),
            o.detail.clone(),
        ]);
    }
    out.push_str(&if t.is_empty() {
        "  none\n".into()
    } else {
        indent(&t.render())
    });
    if e.verdicts.is_empty() {
        out.push_str("\nhealthy: no errors to attribute\n");
    }
    for (n, v) in e.verdicts.iter().enumerate() {
        let _ = writeln!(out, "\nverdict {}", n + 1);
        out.push_str(&verdict_block(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_table_columns_and_stale() {
        let h = pb::HostSummary {
            host_id: "web-1".into(),
            agent_version: "0.1.0".into(),
            last_seen_ms: 1_000_000 - 42_000,
            interval_ms: 30_000,
            reports: 7,
            stale: true,
            spool_dropped: 2,
            ..Default::default()
        };
        let out = hosts(&[h], 1_000_000);
        let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row, ["web-1", "0.1.0", "42s", "30s", "STALE", "7", "2"]);
    }

    #[test]
    fn host_labels_show_in_the_list_and_the_detail() {
        let labelled = pb::HostSummary {
            host_id: "web-acme".into(),
            labels: [("customer".to_string(), "acme".to_string())].into(),
            ..Default::default()
        };
        let plain = pb::HostSummary {
            host_id: "web-shared".into(),
            ..Default::default()
        };
        let out = hosts(&[labelled.clone(), plain.clone()], 0);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("labels"), "{out}");
        assert!(lines[1].ends_with("customer=acme"), "{out}");
        assert!(!hosts(&[plain], 0).contains("labels"));
        let detail = host_detail(
            &pb::HostDetail {
                summary: Some(labelled),
                state: None,
            },
            0,
        );
        assert!(detail.contains("\nlabels customer=acme\n"), "{detail}");
    }

    #[test]
    fn host_detail_shows_sections_and_unavailable() {
        let d = pb::HostDetail {
            summary: Some(pb::HostSummary {
                host_id: "web-1".into(),
                ..Default::default()
            }),
            state: Some(pb::HostReport {
                systemd: Some(pb::SystemdSection {
                    unavailable: "no system bus\x1b[31m".into(),
                    units: vec![],
                }),
                sockets: Some(pb::SocketsSection {
                    listeners: vec![pb::Listener {
                        family: "unix".into(),
                        address: "/run/php/php8.2-fpm.sock".into(),
                        process: "php-fpm8.2".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let out = host_detail(&d, 0);
        assert!(
            out.contains("units\n  unavailable: no system bus\\u{1b}[31m"),
            "{out}"
        );
        assert!(out.contains("/run/php/php8.2-fpm.sock"), "{out}");
        assert!(out.contains("dns\n  none"), "{out}");
    }

    #[test]
    fn sites_show_last_probe() {
        let s = pb::Site {
            name: "shop".into(),
            url: "https://shop.example/".into(),
            origin: "config".into(),
            hosts: vec!["web-1".into()],
            last_probe: Some(pb::EdgeObservation {
                outcome: "ok".into(),
                status: 502,
                at_ms: 940_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = sites(&[s], 1_000_000);
        assert!(
            out.lines().nth(1).unwrap().ends_with("502 ok (60s ago)"),
            "{out}"
        );
    }
}
