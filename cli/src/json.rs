//! The `--json` output: serde structs converted from the proto types.
//!
//! This is a contract (docs/JSON.md): field names and shapes are stable,
//! every field is always present, times are RFC3339 UTC strings or `null`
//! when unset, and the verdict fields are exactly those of TAXONOMY.md §2.

mod hosts;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use gw502_proto::v1 as pb;
use serde::Serialize;

use crate::render::rfc3339;

pub use hosts::{HostDetailJson, HostJson, HostStateJson, host, host_detail};

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

/// `incidents show --json`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetailJson {
    /// The incident.
    pub incident: IncidentJson,
    /// Earlier verdicts, oldest first.
    pub history: Vec<VerdictChangeJson>,
    /// Notifications sent for it.
    pub deliveries: Vec<DeliveryJson>,
}

/// An earlier verdict of an incident.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictChangeJson {
    /// When the verdict changed.
    pub at: Option<String>,
    /// Incident state then.
    pub state: String,
    /// The verdict then.
    pub verdict: VerdictJson,
}

/// One line of `incidents watch --json`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentEventJson {
    /// opened, updated, resolved.
    pub kind: String,
    /// The incident after the change.
    pub incident: IncidentJson,
}

/// A notification to a receiver.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryJson {
    /// Delivery id.
    pub id: u64,
    /// Incident it is about.
    pub incident_id: u64,
    /// Receiver name.
    pub receiver: String,
    /// firing or resolved.
    pub event: String,
    /// pending, delivered, failed.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Last attempt.
    pub last_attempt_at: Option<String>,
    /// Last error, empty when none.
    pub last_error: String,
    /// HTTP status of the last attempt (0: none).
    pub http_status: u32,
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

/// Converts `GetIncident`'s answer; `None` when it carries no incident.
pub fn incident_detail(d: &pb::IncidentDetail) -> Option<IncidentDetailJson> {
    Some(IncidentDetailJson {
        incident: incident(d.incident.as_ref()?),
        history: d
            .history
            .iter()
            .map(|h| VerdictChangeJson {
                at: rfc3339(h.at_ms),
                state: h.state.clone(),
                verdict: verdict(&h.verdict.clone().unwrap_or_default()),
            })
            .collect(),
        deliveries: d.deliveries.iter().map(delivery).collect(),
    })
}

/// Converts a watch event; `None` when it carries no incident.
pub fn incident_event(e: &pb::IncidentEvent) -> Option<IncidentEventJson> {
    Some(IncidentEventJson {
        kind: e.kind.clone(),
        incident: incident(e.incident.as_ref()?),
    })
}

/// Converts a delivery.
pub fn delivery(d: &pb::Delivery) -> DeliveryJson {
    DeliveryJson {
        id: d.id,
        incident_id: d.incident_id,
        receiver: d.receiver.clone(),
        event: d.event.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        last_attempt_at: rfc3339(d.last_attempt_ms),
        last_error: d.last_error.clone(),
        http_status: d.http_status,
    }
}

/// A site and its last public probe.
#[derive(Debug, Clone, Serialize)]
pub struct SiteJson {
    /// Site name.
    pub name: String,
    /// Public URL.
    pub url: String,
    /// `config` or `discovered`.
    pub origin: String,
    /// Origin hosts.
    pub hosts: Vec<String>,
    /// Labels used by routing.
    pub labels: BTreeMap<String, String>,
    /// The last probe, `null` before the first.
    pub last_probe: Option<ProbeJson>,
}

/// An HTTP probe observation (PROBES.md outcome words).
#[derive(Debug, Clone, Serialize)]
pub struct ProbeJson {
    /// Probed URL.
    pub url: String,
    /// Who probed: `collector/<id>` or `agent/<host>`.
    pub vantage: String,
    /// `public` or `origin/<host>`.
    pub target: String,
    /// When.
    pub at: Option<String>,
    /// Outcome word.
    pub outcome: String,
    /// HTTP status (0: none).
    pub status: u32,
    /// Edge in front, if any.
    pub edge: String,
    /// Who made the body.
    pub fingerprint: String,
    /// Vendor error code.
    pub edge_error: String,
    /// Address connected to.
    pub peer: String,
    /// Total time in milliseconds.
    pub total_ms: u32,
    /// Details.
    pub detail: String,
}

/// Converts a probe observation.
pub fn probe(o: &pb::EdgeObservation) -> ProbeJson {
    ProbeJson {
        url: o.url.clone(),
        vantage: o.vantage.clone(),
        target: o.target.clone(),
        at: rfc3339(o.at_ms),
        outcome: o.outcome.clone(),
        status: o.status,
        edge: o.edge.clone(),
        fingerprint: o.fingerprint.clone(),
        edge_error: o.edge_error.clone(),
        peer: o.peer.clone(),
        total_ms: o.timing.as_ref().map(|t| t.total_ms).unwrap_or(0),
        detail: o.detail.clone(),
    }
}

/// Converts a site.
pub fn site(s: &pb::Site) -> SiteJson {
    SiteJson {
        name: s.name.clone(),
        url: s.url.clone(),
        origin: s.origin.clone(),
        hosts: s.hosts.clone(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        last_probe: s.last_probe.as_ref().map(probe),
    }
}

/// `explain --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainJson {
    /// Site the URL belongs to.
    pub site: String,
    /// Its origin hosts.
    pub hosts: Vec<String>,
    /// The probes just made.
    pub observations: Vec<ProbeJson>,
    /// Verdicts; empty when the site looks healthy.
    pub verdicts: Vec<VerdictJson>,
}

/// Converts an explain answer.
pub fn explain(e: &pb::ExplainResponse) -> ExplainJson {
    ExplainJson {
        site: e.site.clone(),
        hosts: e.hosts.clone(),
        observations: e.observations.iter().map(probe).collect(),
        verdicts: e.verdicts.iter().map(verdict).collect(),
    }
}
