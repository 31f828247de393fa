//! The open incidents an Alertmanager lane keeps alive: added on firing,
//! removed on resolve, replaced wholesale by a refresh, narrowed to the sites
//! whose lease the collector holds, and bounded so a flood of incidents
//! cannot grow it without limit. A refresh read from the store before a
//! resolve reached the lane must not bring the resolved incident back, so
//! the lane remembers the ids it saw resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gw502_proto::v1::Incident;

use super::dispatch::Job;
use super::log::Event;

/// Open incidents with the owner override of their route.
pub(crate) type OpenIncidents = Vec<(Arc<Incident>, Option<String>)>;

/// The most incidents one lane re-sends; more are delivered once but not kept alive.
pub(crate) const MAX_OPEN: usize = 10_000;

/// Open incidents by id, with the owner override of their route.
#[derive(Debug, Default)]
pub(crate) struct KeepAlive {
    open: BTreeMap<u64, (Arc<Incident>, Option<String>)>,
    /// Ids seen resolved (the newest [`MAX_OPEN`]); an incident never reopens.
    resolved: BTreeSet<u64>,
}

impl KeepAlive {
    /// Follows a delivery: a firing one is kept (updated), a resolved one forgotten.
    pub(crate) fn track(&mut self, job: &Job) {
        let id = job.incident.id;
        match job.event {
            Event::Resolved => {
                self.open.remove(&id);
                self.resolved.insert(id);
                if self.resolved.len() > MAX_OPEN {
                    self.resolved.pop_first();
                }
            }
            Event::Firing if self.open.len() < MAX_OPEN || self.open.contains_key(&id) => {
                self.open
                    .insert(id, (job.incident.clone(), job.owner_override.clone()));
            }
            Event::Firing => {
                metrics::counter!("gw502_routing_keepalive_overflow_total").increment(1);
                tracing::warn!(
                    incident_id = id,
                    limit = MAX_OPEN,
                    "too many open incidents to keep alive"
                );
            }
        }
    }

    /// Replaces the set with the given open incidents (up to [`MAX_OPEN`]).
    /// Incidents this lane saw resolved stay out.
    pub(crate) fn replace(&mut self, list: OpenIncidents) {
        self.open = list
            .into_iter()
            .filter(|(incident, _)| !self.resolved.contains(&incident.id))
            .take(MAX_OPEN)
            .map(|(incident, owner)| (incident.id, (incident, owner)))
            .collect();
    }

    /// Keeps only the incidents of `sites` (the sites whose lease is held).
    pub(crate) fn retain(&mut self, sites: &BTreeSet<String>) {
        self.open
            .retain(|_, (incident, _)| sites.contains(&incident.site));
    }

    /// Whether nothing is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A copy of the open incidents, by id.
    pub(crate) fn snapshot(&self) -> OpenIncidents {
        self.open.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, event: Event) -> Job {
        Job {
            incident: Arc::new(Incident {
                id,
                site: format!("site{}", id % 2),
                ..Default::default()
            }),
            owner_override: None,
            event,
        }
    }

    #[test]
    fn firing_is_kept_until_resolved() {
        let mut k = KeepAlive::default();
        k.track(&job(1, Event::Firing));
        k.track(&job(2, Event::Firing));
        k.track(&job(1, Event::Firing));
        assert_eq!(k.snapshot().len(), 2);
        k.track(&job(1, Event::Resolved));
        let ids: Vec<_> = k.snapshot().iter().map(|(i, _)| i.id).collect();
        assert_eq!(ids, [2]);
        k.replace(Vec::new());
        assert!(k.is_empty());
    }

    #[test]
    fn a_stale_refresh_does_not_bring_back_a_resolved_incident() {
        let mut k = KeepAlive::default();
        k.track(&job(1, Event::Firing));
        k.track(&job(1, Event::Resolved));
        // Read from the store before the resolve, arriving after it.
        let stale = [job(1, Event::Firing), job(2, Event::Firing)];
        k.replace(stale.iter().map(|j| (j.incident.clone(), None)).collect());
        let ids: Vec<_> = k.snapshot().iter().map(|(i, _)| i.id).collect();
        assert_eq!(ids, [2]);
    }

    #[test]
    fn retain_keeps_the_held_sites_only() {
        let mut k = KeepAlive::default();
        for id in 1..=4 {
            k.track(&job(id, Event::Firing));
        }
        k.retain(&BTreeSet::from(["site1".to_string()]));
        let ids: Vec<_> = k.snapshot().iter().map(|(i, _)| i.id).collect();
        assert_eq!(ids, [1, 3]);
        k.retain(&BTreeSet::new());
        assert!(k.is_empty());
    }
}
