//! The JSON output must match docs/JSON.md: every documented example's keys
//! (recursively) equal the keys our structs serialize.

use serde_json::Value;

use super::*;

const DOC: &str = include_str!("../../../docs/JSON.md");

/// The ```json block under `### <name>` in docs/JSON.md.
fn documented(name: &str) -> Value {
    let heading = format!("### {name}\n");
    let start = DOC
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {name}"));
    let rest = &DOC[start..];
    let open = rest.find("```json\n").unwrap() + "```json\n".len();
    let close = rest[open..].find("```").unwrap();
    serde_json::from_str(&rest[open..open + close]).unwrap()
}

/// Asserts both values have the same keys at every level; documented
/// placeholders (`{"...": ...}`) and empty lists are not descended into.
fn same_shape(doc: &Value, ours: &Value, path: &str) {
    match (doc, ours) {
        (Value::Object(d), _) if d.contains_key("...") => {}
        (Value::Object(d), Value::Object(o)) => {
            let dk: Vec<_> = d.keys().collect();
            let ok: Vec<_> = o.keys().collect();
            assert_eq!(dk, ok, "keys of {path}");
            for (k, v) in d {
                same_shape(v, &o[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(d), Value::Array(o)) => {
            if let (Some(d), Some(o)) = (d.first(), o.first()) {
                same_shape(d, o, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (d, o) => assert_eq!(
            std::mem::discriminant(d),
            std::mem::discriminant(o),
            "type of {path}: doc {d} ours {o}"
        ),
    }
}

fn sample_incident() -> pb::Incident {
    pb::Incident {
        id: 42,
        site: "shop".into(),
        host: "web-1".into(),
        state: "open".into(),
        opened_at_ms: 1_714_557_600_000,
        updated_at_ms: 1_714_557_660_000,
        resolved_at_ms: 0,
        bad_observations: 2,
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
                    detail: "inactive".into(),
                },
                pb::Evidence {
                    source: "proxy_log".into(),
                    host: "web-1".into(),
                    observed_at_ms: 1_714_557_610_000,
                    detail: "connect() failed".into(),
                },
            ],
            summary: "php-fpm is stopped".into(),
            missing: vec![],
        }),
        labels: [("customer".to_string(), "acme".to_string())].into(),
    }
}

fn to_value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn incident_matches_doc_and_taxonomy_fields() {
    let ours = to_value(incident(&sample_incident()));
    same_shape(&documented("incident"), &ours, "incident");
    // Key order as printed (serde_json::to_string keeps struct order).
    let text = serde_json::to_string(&incident(&sample_incident())).unwrap();
    let keys = [
        "id",
        "site",
        "host",
        "state",
        "opened_at",
        "updated_at",
        "resolved_at",
        "status",
        "emitted_by",
        "layer",
        "cause",
        "confidence",
        "next_check",
        "owner",
        "recent_change",
        "evidence",
        "summary",
        "missing",
    ];
    let mut last = 0;
    for k in keys {
        let at = text
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} missing"));
        assert!(at >= last, "{k} out of order in {text}");
        last = at;
    }
    assert_eq!(ours["opened_at"], "2024-05-01T10:00:00Z");
    assert_eq!(ours["resolved_at"], Value::Null);
    assert_eq!(ours["recent_change"]["at"], "2024-05-01T09:58:20Z");
    // Evidence sorted by time.
    assert_eq!(ours["evidence"][0]["source"], "proxy_log");
    assert_eq!(ours["evidence"][0]["observed_at"], "2024-05-01T10:00:10Z");
}

#[test]
fn verdict_without_change_has_null_recent_change() {
    let mut v = sample_incident().verdict.unwrap();
    v.recent_change = None;
    let ours = to_value(verdict(&v));
    same_shape(&documented("verdict"), &ours, "verdict");
    assert_eq!(ours["recent_change"], Value::Null);
}

#[test]
fn detail_event_and_delivery_match_doc() {
    let d = pb::Delivery {
        id: 7,
        incident_id: 42,
        receiver: "hook".into(),
        event: "firing".into(),
        state: "delivered".into(),
        attempts: 1,
        last_attempt_ms: 1_714_557_605_000,
        last_error: String::new(),
        http_status: 200,
    };
    same_shape(&documented("delivery"), &to_value(delivery(&d)), "delivery");
    let detail = pb::IncidentDetail {
        incident: Some(sample_incident()),
        history: vec![pb::VerdictChange {
            at_ms: 1_714_557_600_000,
            verdict: sample_incident().verdict,
            state: "open".into(),
        }],
        deliveries: vec![d],
    };
    same_shape(
        &documented("incident detail"),
        &to_value(incident_detail(&detail).unwrap()),
        "detail",
    );
    let event = pb::IncidentEvent {
        kind: "opened".into(),
        incident: Some(sample_incident()),
    };
    same_shape(
        &documented("incident event"),
        &to_value(incident_event(&event).unwrap()),
        "event",
    );
}

#[test]
fn hosts_sites_probes_explain_match_doc() {
    let summary = pb::HostSummary {
        host_id: "web-1".into(),
        agent_version: "0.1.0".into(),
        first_seen_ms: 1,
        last_seen_ms: 2,
        interval_ms: 30_000,
        reports: 3,
        stale: false,
        spool_dropped: 0,
        addresses: vec!["10.77.0.2".into()],
        labels: [("customer".to_string(), "acme".to_string())].into(),
    };
    same_shape(&documented("host"), &to_value(host(&summary)), "host");
    let target = pb::UpstreamTarget {
        protocol: "fastcgi".into(),
        address: "unix:/run/php/php8.2-fpm.sock".into(),
        ..Default::default()
    };
    let report = pb::HostReport {
        systemd: Some(pb::SystemdSection {
            unavailable: "no system bus".into(),
            units: vec![pb::UnitState {
                name: "nginx.service".into(),
                ..Default::default()
            }],
        }),
        sockets: Some(pb::SocketsSection {
            listeners: vec![pb::Listener::default()],
            ..Default::default()
        }),
        proxy_config: Some(pb::ProxyConfigSection {
            proxies: vec![pb::ProxyConfig {
                kind: "nginx".into(),
                test: Some(pb::ConfigTest {
                    ran: true,
                    ok: true,
                    output: String::new(),
                }),
                targets: vec![target.clone()],
                ..Default::default()
            }],
            ..Default::default()
        }),
        probes: Some(pb::ProbesSection {
            probes: vec![pb::DirectProbe {
                target: Some(target),
                ..Default::default()
            }],
            ..Default::default()
        }),
        dns: Some(pb::DnsSection {
            answers: vec![pb::DnsAnswer::default()],
            ..Default::default()
        }),
        proxy_log: Some(pb::ProxyLogSection {
            signals: vec![pb::LogSignal::default()],
            ..Default::default()
        }),
        journal: Some(pb::JournalSection {
            entries: vec![pb::JournalEntry::default()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let detail = pb::HostDetail {
        summary: Some(summary),
        state: Some(report),
    };
    let ours = to_value(host_detail(&detail));
    same_shape(&documented("host detail"), &ours, "host detail");
    assert_eq!(ours["state"]["unavailable"]["systemd"], "no system bus");
    assert_eq!(ours["state"]["proxies"][0]["config_test_ok"], true);

    let probe_pb = pb::EdgeObservation {
        url: "https://shop.example/".into(),
        outcome: "ok".into(),
        status: 502,
        timing: Some(pb::Timing {
            total_ms: 120,
            ..Default::default()
        }),
        ..Default::default()
    };
    same_shape(&documented("probe"), &to_value(probe(&probe_pb)), "probe");
    let s = pb::Site {
        name: "shop".into(),
        labels: [("team".to_string(), "shop".to_string())].into(),
        last_probe: Some(probe_pb.clone()),
        ..Default::default()
    };
    same_shape(&documented("site"), &to_value(site(&s)), "site");
    let e = pb::ExplainResponse {
        site: "shop".into(),
        observations: vec![probe_pb],
        verdicts: vec![sample_incident().verdict.unwrap()],
        hosts: vec!["web-1".into()],
    };
    same_shape(&documented("explain"), &to_value(explain(&e)), "explain");
}
