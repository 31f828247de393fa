//! The rows the store takes and returns. Times are Unix milliseconds; protobuf
//! payloads (`HostReport`, `EdgeObservation`, `Verdict`) stay prost-encoded
//! bytes, with the fields the store filters on copied into columns.

use std::collections::BTreeMap;

use gw502_proto::v1::EdgeObservation;

/// A report as received from an agent, ready to store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewReport {
    /// The reporting host.
    pub host_id: String,
    /// One run of the agent's spool; with `seq` the idempotency key.
    pub agent_instance: String,
    /// Monotonic per `agent_instance`, starting at 1.
    pub seq: u64,
    /// The agent's version.
    pub agent_version: String,
    /// When the agent made the report.
    pub generated_at_ms: i64,
    /// When this collector received it.
    pub received_at_ms: i64,
    /// Replayed from the agent's spool after an outage.
    pub replayed: bool,
    /// Describes the whole state, not a change.
    pub full_snapshot: bool,
    /// How often the agent reports.
    pub interval_ms: u32,
    /// Reports the agent dropped because its spool was full.
    pub spool_dropped: u64,
    /// The host's own interface addresses.
    pub addresses: Vec<String>,
    /// The prost-encoded `HostReport`.
    pub body: Vec<u8>,
    /// Probe results the agent made of sites, as `(site, observation)`:
    /// stored in the report's transaction when the report is new, so a
    /// report and its cross probes land together or not at all. Not read
    /// back with the report (they live in `observations`).
    pub cross_probes: Vec<(String, ObservationRow)>,
}

/// What storing one report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertOutcome {
    /// The `(host_id, agent_instance, seq)` pair was stored before; nothing changed.
    pub duplicate: bool,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// Row id.
    pub id: i64,
    /// The report as it was inserted.
    pub report: NewReport,
}

/// What the collector knows about one host, kept up to date by `insert_report`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// The host.
    pub host_id: String,
    /// Earliest `received_at_ms` of any report.
    pub first_seen_ms: i64,
    /// Latest `received_at_ms` of any report.
    pub last_seen_ms: i64,
    /// Latest `generated_at_ms`; the fields below come from that report.
    pub last_generated_at_ms: i64,
    /// Agent version of the newest report.
    pub agent_version: String,
    /// Agent instance of the newest report.
    pub agent_instance: String,
    /// Report interval of the newest report.
    pub interval_ms: u32,
    /// Addresses of the newest report.
    pub addresses: Vec<String>,
    /// Spool drops of the newest report.
    pub spool_dropped: u64,
    /// Reports stored for this host (duplicates not counted).
    pub report_count: u64,
}

/// A site the collector watches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteRow {
    /// Unique name.
    pub name: String,
    /// Public URL.
    pub url: String,
    /// `config` or `discovered`.
    pub origin: String,
    /// Origin hosts behind the site.
    pub hosts: Vec<String>,
    /// Free-form labels for routing.
    pub labels: BTreeMap<String, String>,
}

/// One edge or direct probe result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservationRow {
    /// Who probed: `collector/<id>` or `agent/<host>`.
    pub vantage: String,
    /// `public` or `origin/<host>`.
    pub target: String,
    /// HTTP status, 0 if none.
    pub status: u32,
    /// Probe outcome word (docs/PROBES.md).
    pub outcome: String,
    /// When the probe ran.
    pub at_ms: i64,
    /// The prost-encoded `EdgeObservation`.
    pub body: Vec<u8>,
}

impl ObservationRow {
    /// The row for `obs`, with its columns copied from the message.
    pub fn from_observation(obs: &EdgeObservation) -> ObservationRow {
        ObservationRow {
            vantage: obs.vantage.clone(),
            target: obs.target.clone(),
            status: obs.status,
            outcome: obs.outcome.clone(),
            at_ms: obs.at_ms,
            body: prost::Message::encode_to_vec(obs),
        }
    }
}

/// A verdict to open an incident with, or to update the open one of its key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentUpsert {
    /// Site of the incident (key).
    pub site: String,
    /// Host at fault, "" for none (key).
    pub host: String,
    /// Layer at fault (key).
    pub layer: String,
    /// Cause (key).
    pub cause: String,
    /// Status observed.
    pub status: u32,
    /// Hop that produced the status.
    pub emitted_by: String,
    /// Escalation target.
    pub owner: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// One sentence for people.
    pub summary: String,
    /// What to look at next.
    pub next_check: String,
    /// The prost-encoded `Verdict`.
    pub verdict: Vec<u8>,
    /// When the verdict was made.
    pub at_ms: i64,
}

/// What `open_or_update_incident` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// No open incident had the key; a new one was opened.
    Opened,
    /// The open incident's verdict changed.
    Updated,
    /// The open incident already had this verdict; only `last_seen_at_ms` moved.
    Unchanged,
}

/// A stored incident.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentRow {
    /// Row id.
    pub id: i64,
    /// Site.
    pub site: String,
    /// Host at fault, "" for none.
    pub host: String,
    /// Layer at fault.
    pub layer: String,
    /// Cause.
    pub cause: String,
    /// `open` or `resolved`.
    pub state: String,
    /// Status observed.
    pub status: u32,
    /// Hop that produced the status.
    pub emitted_by: String,
    /// Escalation target.
    pub owner: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// One sentence for people.
    pub summary: String,
    /// What to look at next.
    pub next_check: String,
    /// The prost-encoded `Verdict` of the latest change.
    pub verdict: Vec<u8>,
    /// When it was opened.
    pub opened_at_ms: i64,
    /// When its verdict or state last changed.
    pub updated_at_ms: i64,
    /// When a verdict for it was last seen.
    pub last_seen_at_ms: i64,
    /// When it was resolved.
    pub resolved_at_ms: Option<i64>,
    /// Consecutive good observations since the last bad one.
    pub good_observations: u32,
    /// Bad observations in total.
    pub bad_observations: u32,
}

/// Which incidents `list_incidents` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    /// Resolved ones too; otherwise only open ones.
    pub all: bool,
    /// Only this site.
    pub site: Option<String>,
    /// Only this layer.
    pub layer: Option<String>,
    /// Only this owner.
    pub owner: Option<String>,
    /// Only those updated at or after this time.
    pub since_ms: Option<i64>,
    /// At most this many; 0 means [`DEFAULT_LIST_LIMIT`](super::DEFAULT_LIST_LIMIT).
    pub limit: u32,
    /// Only these sites (a tenant's scope); `Some` of none matches nothing.
    pub sites: Option<Vec<String>>,
}

/// One entry in an incident's verdict history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Row id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// When the change happened.
    pub at_ms: i64,
    /// State after the change: `open` or `resolved`.
    pub state: String,
    /// Status of the verdict.
    pub status: u32,
    /// Summary of the verdict.
    pub summary: String,
    /// The prost-encoded `Verdict`.
    pub verdict: Vec<u8>,
}

/// A notification to log before sending it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewDelivery {
    /// The incident notified about.
    pub incident_id: i64,
    /// The receiver's name.
    pub receiver: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// When it was queued.
    pub at_ms: i64,
}

/// A logged notification.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    /// Row id.
    pub id: i64,
    /// The incident notified about.
    pub incident_id: i64,
    /// The receiver's name.
    pub receiver: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was queued.
    pub created_at_ms: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
    /// Last error, "" if none.
    pub error: String,
    /// Last HTTP status, 0 if none.
    pub http_status: u16,
}

/// What `prune` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Reports deleted.
    pub reports: u64,
    /// Observations deleted.
    pub observations: u64,
    /// Resolved incidents deleted, with their history and deliveries.
    pub incidents: u64,
}
