//! The wire forms of stored rows: what the `Query` service returns, what the
//! change feed broadcasts and what routing delivers. Living beside the row
//! types, every module that reads incidents (evaluation, the change feed,
//! queries, the routing backlog) converts them the same way without importing
//! one another.

use gw502_proto::v1::{Delivery, Incident, Verdict};
use prost::Message;

use super::types::{DeliveryRow, IncidentRow};

impl IncidentRow {
    /// The wire form of this incident. A verdict that no longer decodes is
    /// rebuilt from the row's columns.
    pub fn to_proto(&self) -> Incident {
        let verdict = Verdict::decode(self.verdict.as_slice()).unwrap_or_else(|_| Verdict {
            emitted_by: self.emitted_by.clone(),
            layer: self.layer.clone(),
            cause: self.cause.clone(),
            status: self.status,
            confidence: self.confidence,
            next_check: self.next_check.clone(),
            owner: self.owner.clone(),
            summary: self.summary.clone(),
            ..Verdict::default()
        });
        Incident {
            id: self.id as u64,
            site: self.site.clone(),
            host: self.host.clone(),
            state: self.state.clone(),
            opened_at_ms: self.opened_at_ms,
            updated_at_ms: self.updated_at_ms,
            resolved_at_ms: self.resolved_at_ms.unwrap_or(0),
            bad_observations: self.bad_observations,
            verdict: Some(verdict),
            // Labels belong to the site, not the row; the reader fills them.
            labels: Default::default(),
        }
    }
}

impl DeliveryRow {
    /// The wire form of this delivery attempt.
    pub fn to_proto(&self) -> Delivery {
        Delivery {
            id: self.id as u64,
            incident_id: self.incident_id as u64,
            receiver: self.receiver.clone(),
            event: self.event.clone(),
            state: self.state.clone(),
            attempts: self.attempts,
            last_attempt_ms: self.updated_at_ms,
            last_error: self.error.clone(),
            http_status: u32::from(self.http_status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecodable_verdict_is_rebuilt_from_the_columns() {
        let row = IncidentRow {
            id: 7,
            site: "shop".into(),
            layer: "upstream".into(),
            cause: "service_down".into(),
            status: 502,
            verdict: vec![0xff, 0xff, 0xff],
            resolved_at_ms: None,
            ..IncidentRow::default()
        };
        let incident = row.to_proto();
        assert_eq!(incident.id, 7);
        assert_eq!(incident.resolved_at_ms, 0);
        let verdict = incident.verdict.expect("verdict");
        assert_eq!(verdict.cause, "service_down");
        assert_eq!(verdict.status, 502);

        let stored = Verdict {
            cause: "wrong_port".into(),
            ..Verdict::default()
        };
        let row = IncidentRow {
            verdict: stored.encode_to_vec(),
            ..row
        };
        assert_eq!(row.to_proto().verdict, Some(stored));
    }
}
