//! Text views of incidents: the list, one incident with its request chain,
//! verdict and evidence timeline, and the one-line watch events.

use std::fmt::Write as _;

use gw502_proto::v1 as pb;

use super::table::Table;
use super::{age, chain, escape, time_or_dash};

/// The `incidents` table.
pub fn list(incidents: &[pb::Incident], now_ms: i64) -> String {
    if incidents.is_empty() {
        return "no incidents\n".into();
    }
    let labelled = incidents.iter().any(|i| !i.labels.is_empty());
    let mut headers = vec![
        "id", "state", "site", "status", "layer", "cause", "host", "owner", "age",
    ];
    headers.extend(labelled.then_some("labels"));
    let mut t = Table::new(&headers);
    for i in incidents {
        let v = i.verdict.clone().unwrap_or_default();
        let mut row = vec![
            i.id.to_string(),
            i.state.clone(),
            i.site.clone(),
            status_word(v.status),
            v.layer,
            v.cause,
            i.host.clone(),
            v.owner,
            age(now_ms, i.opened_at_ms),
        ];
        row.extend(labelled.then(|| crate::labels::text(&i.labels)));
        t.row(row);
    }
    t.render()
}

/// `incidents show`: header, chain, verdict, evidence, history, deliveries.
pub fn show(d: &pb::IncidentDetail, now_ms: i64) -> String {
    let mut out = String::new();
    let Some(i) = &d.incident else {
        return "the collector returned no incident\n".into();
    };
    let v = i.verdict.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "incident {}  {}  site {}  host {}",
        i.id,
        escape(&i.state),
        escape(&i.site),
        if i.host.is_empty() {
            "-".into()
        } else {
            escape(&i.host)
        },
    );
    let _ = writeln!(
        out,
        "opened {} ({} ago)  updated {}  resolved {}  bad observations {}",
        time_or_dash(i.opened_at_ms),
        age(now_ms, i.opened_at_ms),
        time_or_dash(i.updated_at_ms),
        time_or_dash(i.resolved_at_ms),
        i.bad_observations,
    );
    if !i.labels.is_empty() {
        let _ = writeln!(out, "labels {}", escape(&crate::labels::text(&i.labels)));
    }
    out.push('\n');
    out.push_str(&verdict_block(&v));
    if !d.history.is_empty() {
        out.push_str("\nhistory\n");
        let mut t = Table::new(&["at", "state", "status", "layer", "cause", "confidence"]);
        for h in &d.history {
            let hv = h.verdict.clone().unwrap_or_default();
            t.row([
                time_or_dash(h.at_ms),
                h.state.clone(),
                status_word(hv.status),
                hv.layer,
                hv.cause,
                format!("{:.2}", hv.confidence),
            ]);
        }
        out.push_str(&indent(&t.render()));
    }
    out.push_str("\ndeliveries\n");
    if d.deliveries.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&indent(&super::fleet::deliveries(&d.deliveries, now_ms)));
    }
    out
}

/// The chain, the verdict fields and the evidence timeline of one verdict.
pub fn verdict_block(v: &pb::Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {}\n",
        chain::draw(&v.emitted_by, &v.layer, &v.cause, v.status)
    );
    let mut field = |name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(out, "{name:<14}{}", escape(value));
        }
    };
    field("verdict", &format!("{} / {}", v.layer, v.cause));
    field(
        "status",
        &format!("{} emitted by {}", status_word(v.status), v.emitted_by),
    );
    field("confidence", &format!("{:.2}", v.confidence));
    field("owner", &v.owner);
    field("summary", &v.summary);
    let change = v
        .recent_change
        .as_ref()
        .map(|c| {
            format!(
                "{} {} on {} at {}",
                c.kind,
                c.subject,
                c.host,
                time_or_dash(c.at_ms)
            )
        })
        .unwrap_or_else(|| "none".into());
    field("recent change", &change);
    field("next check", &v.next_check);
    field("missing", &v.missing.join(", "));
    out.push_str("\nevidence (oldest first)\n");
    if v.evidence.is_empty() {
        out.push_str("  none\n");
        return out;
    }
    let mut evidence: Vec<&pb::Evidence> = v.evidence.iter().collect();
    evidence.sort_by_key(|e| e.observed_at_ms);
    let mut t = Table::new(&["observed", "source", "host", "detail"]).max_cell(120);
    for e in evidence {
        t.row([
            time_or_dash(e.observed_at_ms),
            e.source.clone(),
            e.host.clone(),
            e.detail.clone(),
        ]);
    }
    out.push_str(&indent(&t.render()));
    out
}

/// One `incidents watch` line.
pub fn event_line(e: &pb::IncidentEvent) -> String {
    let Some(i) = &e.incident else {
        return format!("{} (no incident)", escape(&e.kind));
    };
    let v = i.verdict.clone().unwrap_or_default();
    let at = if i.updated_at_ms != 0 {
        i.updated_at_ms
    } else {
        i.opened_at_ms
    };
    format!(
        "{}  {:<8} #{} {} {} {}/{} emitted_by={} owner={} {}",
        time_or_dash(at),
        escape(&e.kind),
        i.id,
        escape(&i.site),
        status_word(v.status),
        escape(&v.layer),
        escape(&v.cause),
        escape(&v.emitted_by),
        escape(&v.owner),
        super::cell(&v.summary, 160),
    )
    .trim_end()
    .to_owned()
}

fn status_word(status: u32) -> String {
    if status == 0 {
        "-".into()
    } else {
        status.to_string()
    }
}

/// Indents every line by two spaces.
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> pb::Incident {
        pb::Incident {
            id: 42,
            site: "shop".into(),
            host: "web-1".into(),
            state: "open".into(),
            opened_at_ms: 1_714_557_600_000,
            updated_at_ms: 1_714_557_660_000,
            resolved_at_ms: 0,
            bad_observations: 3,
            verdict: Some(pb::Verdict {
                emitted_by: "proxy".into(),
                layer: "upstream".into(),
                cause: "service_down".into(),
                status: 502,
                confidence: 0.9,
                next_check: "systemctl status php8.2-fpm".into(),
                owner: "app".into(),
                recent_change: Some(pb::RecentChange {
                    host: "web-1".into(),
                    kind: "unit_stop".into(),
                    subject: "php8.2-fpm.service".into(),
                    at_ms: 1_714_557_500_000,
                }),
                evidence: vec![
                    pb::Evidence {
                        source: "systemd".into(),
                        host: "web-1".into(),
                        observed_at_ms: 1_714_557_650_000,
                        detail: "php8.2-fpm.service inactive".into(),
                    },
                    pb::Evidence {
                        source: "proxy_log".into(),
                        host: "web-1".into(),
                        observed_at_ms: 1_714_557_610_000,
                        detail: "connect() failed\x1b[2J (2: No such file or directory)".into(),
                    },
                ],
                summary: "php-fpm is stopped".into(),
                missing: vec![],
            }),
            labels: Default::default(),
        }
    }

    #[test]
    fn list_has_the_columns() {
        let out = list(&[sample()], 1_714_557_600_000 + 3 * 3_600_000);
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            [
                "id", "state", "site", "status", "layer", "cause", "host", "owner", "age"
            ]
        );
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            [
                "42",
                "open",
                "shop",
                "502",
                "upstream",
                "service_down",
                "web-1",
                "app",
                "3h"
            ]
        );
        assert_eq!(list(&[], 0), "no incidents\n");
    }

    #[test]
    fn labels_get_a_column_when_any_incident_has_some() {
        let mut labelled = sample();
        labelled.labels = [
            ("tier".to_string(), "gold".to_string()),
            ("customer".to_string(), "acme".to_string()),
        ]
        .into();
        let out = list(&[sample(), labelled.clone()], 1_714_557_600_000);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("labels"), "{out}");
        assert!(lines[2].ends_with("customer=acme,tier=gold"), "{out}");
        assert!(!lines[1].contains('='), "{out}");
        let shown = show(
            &pb::IncidentDetail {
                incident: Some(labelled),
                ..Default::default()
            },
            1_714_557_600_000,
        );
        assert!(
            shown.contains("\nlabels customer=acme,tier=gold\n"),
            "{shown}"
        );
    }

    #[test]
    fn show_draws_chain_verdict_and_sorted_evidence() {
        let d = pb::IncidentDetail {
            incident: Some(sample()),
            history: vec![],
            deliveries: vec![],
        };
        let out = show(&d, 1_714_557_700_000);
        assert!(
            out.contains(
                "visitor ─▶ edge ─▶ proxy [502 emitted here] ─▶ upstream ✗ (service_down)"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "recent change unit_stop php8.2-fpm.service on web-1 at 2024-05-01T09:58:20Z"
            ),
            "{out}"
        );
        assert!(
            out.contains("next check    systemctl status php8.2-fpm"),
            "{out}"
        );
        let log = out.find("proxy_log").unwrap();
        let sys = out.find("php8.2-fpm.service inactive").unwrap();
        assert!(log < sys, "evidence not sorted by time:\n{out}");
        assert!(!out.contains('\x1b'), "{out}");
        assert!(out.contains("\\u{1b}[2J"));
    }

    #[test]
    fn event_lines_are_single_escaped_lines() {
        let mut i = sample();
        i.site = "shop\nINJECTED 999 resolved".into();
        let line = event_line(&pb::IncidentEvent {
            kind: "opened".into(),
            incident: Some(i),
        });
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("2024-05-01T10:01:00Z  opened   #42 shop\\u{a}INJECTED"),
            "{line}"
        );
    }
}
