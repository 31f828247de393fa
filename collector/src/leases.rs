//! Per-site leases: with several collectors on one database, each site is
//! probed and evaluated by one collector at a time, the holder of the lease
//! `site/<name>` (see docs/RELIABILITY.md, "How collectors share work").
//!
//! [`lease_loop`] claims or renews the lease of every known site every third
//! of `lease_ttl` ([`crate::store::Store::claim_lease`], a compare-and-set by
//! the database's clock) and keeps the result in [`crate::hub::SiteLeases`], which the
//! probe and evaluation loops ask before touching a site. A lease counts as
//! held locally only until two thirds of its ttl after the claim started, so
//! a collector that cannot reach the database stops working a site before
//! the lease expires in the database and another collector takes it over.
//! A takeover is logged and counted in
//! `gw502_collector_site_lease_takeovers_total`; on a clean shutdown the
//! collector releases its leases so the others take them at once.
//!
//! The lease also decides who keeps a site's Alertmanager alerts alive:
//! after each round, [`KeptAlive`] hands the open incidents of newly held
//! sites (from the store) to the dispatcher and drops those of sites lost, so
//! one collector re-sends each alert and a takeover resumes the re-sends.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::hub::Hub;
use crate::sites::site_views;
use crate::store::{LeaseClaim, StoreError};

/// The prefix of site lease names.
pub const SITE_LEASE_PREFIX: &str = "site/";

/// The lease name of a site.
pub fn site_lease(site: &str) -> String {
    format!("{SITE_LEASE_PREFIX}{site}")
}

/// Claims or renews every site's lease every third of `lease_ttl`. A failed
/// round is logged; the held set then runs out on its own.
pub async fn lease_loop(hub: Arc<Hub>) -> Result<(), StoreError> {
    let ttl = hub.config.lease_ttl;
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kept = KeptAlive::default();
    loop {
        tick.tick().await;
        if let Err(error) = claim_all(&hub, ttl).await {
            tracing::warn!(%error, "cannot renew site leases");
        }
        kept.follow(&hub).await;
    }
}

/// The sites whose Alertmanager alerts this collector keeps alive, kept equal
/// to the sites whose lease it holds.
#[derive(Debug, Default)]
pub struct KeptAlive {
    sites: BTreeSet<String>,
}

impl KeptAlive {
    /// Brings the keep-alive lanes in step with the leases held now. Sites
    /// gained: their open incidents are read from the store and re-sent at
    /// once (the previous holder stopped). Sites lost: dropped from the lanes
    /// without the store, so it works while the database is away. A failed
    /// read is retried on the next round.
    pub async fn follow(&mut self, hub: &Hub) {
        let held = hub.leases.held();
        if held == self.sites {
            return;
        }
        let gained = !held.is_subset(&self.sites);
        if gained {
            match crate::sites::refresh_held(hub, &held).await {
                Ok(()) => {
                    tracing::debug!(
                        sites = held.len(),
                        "alertmanager keep-alive follows the site leases"
                    );
                    self.sites = held;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read open incidents to keep their alerts alive");
                }
            }
        }
        hub.live().dispatcher.retain(&held);
        self.sites.retain(|site| held.contains(site));
    }
}

/// One round: claims the lease of every known site.
pub async fn claim_all(hub: &Hub, ttl: Duration) -> Result<(), StoreError> {
    let sites: BTreeSet<String> = site_views(hub).await?.into_iter().map(|s| s.name).collect();
    hub.leases.retain(&sites);
    claim(hub, &sites, ttl).await;
    metrics::gauge!("gw502_collector_site_leases_held").set(hub.leases.held().len() as f64);
    Ok(())
}

/// Claims at once the leases of `sites` never claimed before (a site just
/// discovered from a report), so its first evaluation does not wait for the
/// next round.
pub async fn claim_new<'a>(hub: &Hub, sites: impl IntoIterator<Item = &'a str>) {
    let new: BTreeSet<String> = hub.leases.unknown(sites).into_iter().collect();
    if !new.is_empty() {
        claim(hub, &new, hub.config.lease_ttl).await;
    }
}

async fn claim(hub: &Hub, sites: &BTreeSet<String>, ttl: Duration) {
    let ttl_ms = ttl.as_millis() as i64;
    for site in sites {
        let started = Instant::now();
        let claim = match hub
            .store
            .claim_lease(&site_lease(site), &hub.config.id, ttl_ms)
            .await
        {
            Ok(claim) => claim,
            Err(error) => {
                // Keep what is held: it runs out by itself before the lease does.
                tracing::warn!(site = %site, %error, "cannot claim site lease");
                continue;
            }
        };
        let until = claim.held().then(|| started + ttl * 2 / 3);
        hub.leases.set(site, until);
        match claim {
            LeaseClaim::Acquired => {
                tracing::info!(site = %site, holder = %hub.config.id, "site lease acquired");
            }
            LeaseClaim::TakenOver { from } => {
                metrics::counter!("gw502_collector_site_lease_takeovers_total").increment(1);
                tracing::warn!(site = %site, from = %from, holder = %hub.config.id, "site lease taken over from a collector that stopped renewing it");
            }
            LeaseClaim::Renewed | LeaseClaim::HeldBy { .. } => {}
        }
    }
}

/// Gives the site leases back on a clean shutdown, so another collector
/// takes the sites without waiting for the leases to expire.
pub async fn release_all(hub: &Hub) {
    hub.leases.clear();
    match hub
        .store
        .release_leases(&hub.config.id, SITE_LEASE_PREFIX)
        .await
    {
        Ok(released) => tracing::info!(released, "site leases released"),
        Err(error) => tracing::warn!(%error, "cannot release site leases"),
    }
}
