//! The incident JSON contract (docs/JSON.md, TAXONOMY.md §2), in one place:
//! `gw502ctl --json` prints it and webhook deliveries carry it, so automation
//! reads the same fields whichever way an incident reaches it. Field names and
//! shapes are stable; times are RFC 3339 UTC strings, or `null` when unset.

use std::collections::BTreeMap;

use gw502_proto::v1 as pb;
use serde::Serialize;

pub use crate::clock::rfc3339;

/// One incident: identity, times and its current verdict.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentJson {
    /// Incident id.
    pub id: u64,
    /// Site name.
    pub site: String,
    /// Host the verdict points at (may be empty).
    pub host: String,
    /// `open` or `resolved`.
    pub state: String,
    /// When it opened.
    pub opened_at: Option<String>,
    /// Last change.
    pub updated_at: Option<String>,
    /// When it resolved; `null` while open.
    pub resolved_at: Option<String>,
    /// The verdict fields, flattened into the incident object.
    #[serde(flatten)]
    pub verdict: VerdictJson,
    /// The labels of the incident's site (`{}` when it has none).
    pub labels: BTreeMap<String, String>,
}

/// The verdict fields of TAXONOMY.md §2.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictJson {
    /// HTTP status observed.
    pub status: u32,
    /// Hop that produced the status.
    pub emitted_by: String,
    /// Hop at fault.
    pub layer: String,
    /// Cause within the layer.
    pub cause: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// What to look at next.
    pub next_check: String,
    /// Escalation target.
    pub owner: String,
    /// A change shortly before the failure started.
    pub recent_change: Option<RecentChangeJson>,
    /// Evidence, sorted by time.
    pub evidence: Vec<EvidenceJson>,
    /// One sentence for people.
    pub summary: String,
    /// For insufficient_evidence: what is missing.
    pub missing: Vec<String>,
}

/// A unit or config change near the start of the failure.
#[derive(Debug, Clone, Serialize)]
pub struct RecentChangeJson {
    /// Host of the change.
    pub host: String,
    /// unit_start, unit_stop, unit_restart, unit_reload, config_change.
    pub kind: String,
    /// Unit or file.
    pub subject: String,
    /// When.
    pub at: Option<String>,
}

/// One piece of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceJson {
    /// edge_probe, direct_probe, proxy_log, access_log, systemd, sockets, journal, dns, proxy_config.
    pub source: String,
    /// Host it came from.
    pub host: String,
    /// When it was observed.
    pub observed_at: Option<String>,
    /// What it says.
    pub detail: String,
}

/// Converts a proto incident.
pub fn incident(i: &pb::Incident) -> IncidentJson {
    IncidentJson {
        id: i.id,
        site: i.site.clone(),
        host: i.host.clone(),
        state: i.state.clone(),
        opened_at: rfc3339(i.opened_at_ms),
        updated_at: rfc3339(i.updated_at_ms),
        resolved_at: rfc3339(i.resolved_at_ms),
        verdict: verdict(&i.verdict.clone().unwrap_or_default()),
        labels: i
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Converts a proto verdict; evidence is sorted by time.
pub fn verdict(v: &pb::Verdict) -> VerdictJson {
    let mut evidence: Vec<&pb::Evidence> = v.evidence.iter().collect();
    evidence.sort_by_key(|e| e.observed_at_ms);
    VerdictJson {
        status: v.status,
        emitted_by: v.emitted_by.clone(),
        layer: v.layer.clone(),
        cause: v.cause.clone(),
        confidence: v.confidence,
        next_check: v.next_check.clone(),
        owner: v.owner.clone(),
        recent_change: v.recent_change.as_ref().map(|c| RecentChangeJson {
            host: c.host.clone(),
            kind: c.kind.clone(),
            subject: c.subject.clone(),
            at: rfc3339(c.at_ms),
        }),
        evidence: evidence
            .into_iter()
            .map(|e| EvidenceJson {
                source: e.source.clone(),
                host: e.host.clone(),
                observed_at: rfc3339(e.observed_at_ms),
                detail: e.detail.clone(),
            })
            .collect(),
        summary: v.summary.clone(),
        missing: v.missing.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_field_names() {
        assert_eq!(rfc3339(0), None);
        assert_eq!(
            rfc3339(1_714_557_600_000).as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            rfc3339(1_714_557_600_123).as_deref(),
            Some("2024-05-01T10:00:00.123Z"),
            "milliseconds are kept"
        );
        let json = serde_json::to_value(incident(&pb::Incident {
            id: 7,
            verdict: Some(pb::Verdict {
                cause: "wrong_port".into(),
                evidence: vec![
                    pb::Evidence {
                        source: "sockets".into(),
                        observed_at_ms: 2,
                        ..Default::default()
                    },
                    pb::Evidence {
                        source: "proxy_log".into(),
                        observed_at_ms: 1,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(json["cause"], "wrong_port", "verdict fields are flattened");
        assert_eq!(json["resolved_at"], serde_json::Value::Null);
        assert_eq!(
            json["labels"],
            serde_json::json!({}),
            "labels are always present"
        );
        assert_eq!(
            json["evidence"][0]["source"], "proxy_log",
            "evidence sorted by time"
        );
    }
}
