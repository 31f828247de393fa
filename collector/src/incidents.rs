//! Keeps incidents: gathers each site's evidence from the store, asks the
//! attribution engine for verdicts, and opens, updates and resolves incidents.
//!
//! An incident is one cause on one host, keyed by (site, host, layer, cause)
//! while open. A verdict with its key updates it; an incident whose key no
//! fresh pass (a new report or probe) produces any more no longer holds and
//! resolves after `resolve_after` such passes in a row, even while the site
//! keeps failing for another cause. Requiring several keeps a flapping cause
//! from opening and closing incidents on every probe. The full rule,
//! sharpening and blurring of `insufficient_evidence` included, is in
//! [`lifecycle`]. An opened or resolved incident writes one delivery per
//! routed receiver in the transaction of the change (the delivery log,
//! [`crate::deliveries`], sends them). Only sites whose lease this collector
//! holds are evaluated ([`crate::leases`]).

pub mod lifecycle;
pub mod served;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use gw502_proto::v1::{EdgeObservation, HostReport, Incident};
use gw502_vocab::clock::now_ms;
use prost::Message;

use crate::attribution::{self, HostEvidence, SiteEvidence, SiteRef};
use crate::hub::{Dirty, Hub};
use crate::routing::Event;
use crate::sites::{HostIndex, SiteView, site_views, url_host};
use crate::state::fold;
use crate::store::{Change, HostRow, IncidentRow, IncidentUpsert, Outgoing, StoreError};
use lifecycle::IncidentKey;

/// Re-evaluates sites, remembering which evidence it has already counted.
pub struct Evaluator {
    hub: Arc<Hub>,
    stamps: HashMap<String, i64>,
    /// Served-unit facts already stored, with when they were last written.
    served: HashMap<ServedKey, i64>,
}

/// (host, unit, target, proxy host) of a served-unit fact.
type ServedKey = (String, String, String, String);

/// How often a served-unit fact already stored is written again (its `seen_ms`
/// only keeps it from being pruned).
const SERVED_REFRESH_MS: i64 = 60_000;

impl Evaluator {
    /// An evaluator over the shared state.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            stamps: HashMap::new(),
            served: HashMap::new(),
        }
    }

    /// Evaluates every known site once.
    pub async fn evaluate_all(&mut self) -> Result<(), StoreError> {
        let sites = site_views(&self.hub).await?;
        self.evaluate(&sites).await
    }

    /// Evaluates only the sites whose evidence changed: probed sites, and
    /// sites served by (or pointing at the address of) a host that reported.
    pub async fn evaluate_changed(&mut self, dirty: &Dirty) -> Result<(), StoreError> {
        if dirty.is_empty() {
            return Ok(());
        }
        let sites: Vec<SiteView> = site_views(&self.hub)
            .await?
            .into_iter()
            .filter(|site| touched(site, dirty))
            .collect();
        self.evaluate(&sites).await
    }

    async fn evaluate(&mut self, sites: &[SiteView]) -> Result<(), StoreError> {
        crate::leases::claim_new(&self.hub, sites.iter().map(|s| s.name.as_str())).await;
        let sites: Vec<SiteView> = sites
            .iter()
            .filter(|s| self.hub.leases.holds(&s.name))
            .cloned()
            .collect();
        let sites = &sites[..];
        if sites.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let hosts = self.hub.store.list_hosts().await?;
        let hosts = HostIndex::new(&hosts);
        // Evidence is read a few sites ahead (reads run in parallel on the
        // pool); verdicts are applied one site at a time, in order.
        let hub = self.hub.clone();
        let (hub, hosts) = (&hub, &hosts);
        let mut evidence = futures::stream::iter(sites.iter().cloned())
            .map(|site| async move {
                let read = site_evidence(hub, &site, hosts, now, Vec::new()).await;
                (site, read)
            })
            .buffered(EVIDENCE_READ_AHEAD);
        while let Some((site, read)) = evidence.next().await {
            let read = read?;
            self.remember_served(&read, now).await?;
            self.judge(&site, read, now).await?;
        }
        Ok(())
    }

    /// Stores the served-unit facts of `evidence` that are new or due a refresh.
    async fn remember_served(
        &mut self,
        evidence: &SiteEvidence,
        now: i64,
    ) -> Result<(), StoreError> {
        let due: Vec<_> = served::learn(evidence)
            .into_iter()
            .filter(|r| {
                let key = (
                    r.host_id.clone(),
                    r.unit.clone(),
                    r.target.clone(),
                    r.proxy_host.clone(),
                );
                match self.served.get(&key) {
                    Some(at) if now - at < SERVED_REFRESH_MS => false,
                    _ => {
                        self.served.insert(key, now);
                        true
                    }
                }
            })
            .collect();
        if !due.is_empty() {
            tracing::debug!(facts = due.len(), "served units remembered");
            self.hub.store.record_served(&due).await?;
        }
        Ok(())
    }

    async fn judge(
        &mut self,
        site: &SiteView,
        evidence: SiteEvidence,
        now: i64,
    ) -> Result<(), StoreError> {
        let stamp = evidence
            .edge
            .iter()
            .map(|o| o.at_ms)
            .chain(evidence.hosts.iter().map(|h| h.last_seen_ms))
            .max()
            .unwrap_or(0);
        let previous = self.stamps.insert(site.name.clone(), stamp).unwrap_or(0);
        let fresh = stamp > previous;
        let verdicts = attribution::attribute(&evidence);
        let store = &self.hub.store;
        let open = store.open_incidents(Some(&site.name)).await?;
        let upserts: Vec<IncidentUpsert> = verdicts
            .iter()
            .map(|v| upsert_for(&site.name, v, now))
            .collect();
        let keys: Vec<IncidentKey> = upserts.iter().map(key_of).collect();
        let plan = lifecycle::plan(&keys, &open);
        // The vague incident goes first, so no reader sees it open beside its sharper successor.
        for &id in &plan.superseded {
            self.resolve(id, site, now, "superseded by a sharper verdict")
                .await?;
        }
        for &i in &plan.held {
            let k = &keys[i];
            tracing::debug!(site = %site.name, host = %k.host, "verdict held back by an open incident sharper about its host");
        }
        for &i in &plan.upsert {
            let routes = self.routes(site);
            let (row, change) = store.open_or_update_routed(&upserts[i], &routes).await?;
            if fresh {
                store.record_bad_observation(row.id, now).await?;
            }
            if change == Change::Opened {
                tracing::info!(site = %row.site, host = %row.host, layer = %row.layer, cause = %row.cause, status = row.status, "incident opened");
                metrics::counter!("gw502_collector_incidents_opened_total").increment(1);
                self.dispatch(row.to_proto(), &site.labels, Event::Firing);
            }
        }
        if fresh {
            for &id in &plan.absent {
                let good = store.record_good_observation(id, now).await?;
                if good >= self.hub.config.resolve_after {
                    self.resolve(id, site, now, "cause no longer observed")
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Resolves an open incident and tells routing; nothing when another
    /// collector resolved it first.
    async fn resolve(
        &self,
        id: i64,
        site: &SiteView,
        now: i64,
        why: &'static str,
    ) -> Result<(), StoreError> {
        let routes = self.routes(site);
        if let Some(row) = self.hub.store.resolve_routed(id, now, &routes).await? {
            tracing::info!(site = %row.site, host = %row.host, layer = %row.layer, cause = %row.cause, why, "incident resolved");
            self.dispatch(row.to_proto(), &site.labels, Event::Resolved);
        }
        Ok(())
    }

    /// The change's deliveries are in the log: wake the sender, and keep
    /// Alertmanager's re-sends in step.
    fn dispatch(
        &self,
        incident: Incident,
        labels: &std::collections::BTreeMap<String, String>,
        event: Event,
    ) {
        self.hub.outbox.notify_one();
        self.hub.live().dispatcher.track(incident, labels, event);
    }

    /// Where a change of an incident of `site` is delivered, by the routing in force.
    fn routes(
        &self,
        site: &SiteView,
    ) -> impl Fn(&IncidentRow) -> Vec<Outgoing> + Send + Sync + use<> {
        let router = self.hub.live().router.clone();
        let labels = site.labels.clone();
        move |row: &IncidentRow| {
            router
                .route(&row.to_proto(), &labels)
                .into_iter()
                .map(|r| Outgoing {
                    receiver: r.receiver,
                    owner_override: r.owner_override,
                })
                .collect()
        }
    }
}

/// Sites whose evidence is read ahead of the one being judged.
const EVIDENCE_READ_AHEAD: usize = 4;

/// Whether new evidence in `dirty` concerns `site`.
fn touched(site: &SiteView, dirty: &Dirty) -> bool {
    let url_host = url_host(&site.url);
    dirty.sites.contains(&site.name)
        || site.hosts.iter().any(|h| dirty.hosts.contains(h))
        || (!url_host.is_empty() && dirty.addresses.contains(url_host))
}

/// Everything known about one site: stored observations (plus `extra`, e.g.
/// a probe made just now) and the folded state of every host serving it.
pub async fn site_evidence(
    hub: &Hub,
    site: &SiteView,
    hosts: &HostIndex<'_>,
    now: i64,
    extra: Vec<EdgeObservation>,
) -> Result<SiteEvidence, StoreError> {
    let window_start = now - hub.config.window.as_millis() as i64;
    let mut edge: Vec<EdgeObservation> = hub
        .store
        .observations_since(&site.name, window_start)
        .await?
        .iter()
        .filter_map(|row| EdgeObservation::decode(row.body.as_slice()).ok())
        .collect();
    edge.extend(extra);
    edge.sort_by_key(|o| o.at_ms);
    let mut evidence_hosts = Vec::new();
    for host in hosts.serving(site) {
        evidence_hosts.push(host_evidence(hub, host, window_start).await?);
    }
    // Hosts behind them: those owning an address a serving proxy targets
    // (an app on a second host), so their sockets and units count too.
    let targets: BTreeSet<&str> = evidence_hosts
        .iter()
        .flat_map(|h| h.state.proxy_config.iter().flat_map(|c| &c.proxies))
        .flat_map(|p| &p.targets)
        .map(|t| t.host.as_str())
        .filter(|host| !host.is_empty())
        .collect();
    let mut behind: Vec<&HostRow> = targets
        .iter()
        .flat_map(|address| hosts.at(address))
        .copied()
        .filter(|h| !evidence_hosts.iter().any(|e| e.host_id == h.host_id))
        .collect();
    behind.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    behind.dedup_by(|a, b| a.host_id == b.host_id);
    for host in behind {
        evidence_hosts.push(host_evidence(hub, host, window_start).await?);
    }
    // Units the collector saw serve a target of one of these hosts' proxies before.
    let mut remembered = Vec::new();
    for h in &evidence_hosts {
        remembered.extend(hub.store.served_on(&h.host_id).await?);
    }
    served::apply(&mut evidence_hosts, &remembered);
    Ok(SiteEvidence {
        site: SiteRef {
            name: site.name.clone(),
            url: site.url.clone(),
            origin_hosts: site.hosts.clone(),
        },
        now_ms: now,
        edge,
        hosts: evidence_hosts,
    })
}

async fn host_evidence(
    hub: &Hub,
    host: &HostRow,
    window_start: i64,
) -> Result<HostEvidence, StoreError> {
    Ok(HostEvidence {
        host_id: host.host_id.clone(),
        last_seen_ms: host.last_seen_ms,
        interval_ms: host.interval_ms,
        state: host_state(hub, &host.host_id, window_start).await?,
    })
}

/// A host's current picture: its last full snapshot, every later change, and
/// the incremental evidence of the window.
pub async fn host_state(
    hub: &Hub,
    host_id: &str,
    window_start: i64,
) -> Result<HostReport, StoreError> {
    let reports: Vec<HostReport> = hub
        .store
        .state_reports(host_id, window_start)
        .await?
        .iter()
        .filter_map(|body| HostReport::decode(body.as_slice()).ok())
        .collect();
    Ok(fold(&reports, window_start))
}

fn key_of(u: &IncidentUpsert) -> IncidentKey {
    IncidentKey {
        host: u.host.clone(),
        layer: u.layer.clone(),
        cause: u.cause.clone(),
    }
}

fn upsert_for(site: &str, verdict: &attribution::Verdict, now: i64) -> IncidentUpsert {
    let proto = gw502_proto::v1::Verdict::from(verdict);
    IncidentUpsert {
        site: site.to_string(),
        host: verdict.host.clone().unwrap_or_default(),
        layer: proto.layer.clone(),
        cause: proto.cause.clone(),
        status: proto.status,
        emitted_by: proto.emitted_by.clone(),
        owner: proto.owner.clone(),
        confidence: proto.confidence,
        summary: proto.summary.clone(),
        next_check: proto.next_check.clone(),
        verdict: proto.encode_to_vec(),
        at_ms: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, url: &str, hosts: &[&str]) -> SiteView {
        SiteView {
            name: name.into(),
            url: url.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            ..SiteView::default()
        }
    }

    #[test]
    fn only_sites_whose_evidence_changed_are_touched() {
        let mut dirty = Dirty::default();
        dirty.hosts.insert("web1".into());
        dirty.addresses.insert("10.77.0.11".into());
        dirty.sites.insert("probed.example".into());
        assert!(
            touched(&site("shop", "", &["web1"]), &dirty),
            "served by a host that reported"
        );
        assert!(
            touched(&site("ip", "http://10.77.0.11/", &[]), &dirty),
            "its URL names the host's address"
        );
        assert!(touched(&site("probed.example", "", &[]), &dirty), "probed");
        assert!(!touched(
            &site("other", "http://10.77.0.12/", &["web2"]),
            &dirty
        ));
        assert!(!touched(&site("shop", "", &["web1"]), &Dirty::default()));
    }
}
