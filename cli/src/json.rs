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
pub use gw502_vocab::contract::{
    EvidenceJson, IncidentJson, RecentChangeJson, VerdictJson, incident, verdict,
};

pub use hosts::{HostDetailJson, HostJson, HostStateJson, host, host_detail};

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
