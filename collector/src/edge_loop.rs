//! The collector's periodic work: edge probes of every site with a public
//! URL, re-evaluation of incidents, the incident change feed and retention.
//!
//! When several collectors share one PostgreSQL, a site is probed and
//! evaluated only by the collector holding its lease ([`crate::leases`]), so
//! it is probed once per interval and its incidents change in one place;
//! retention runs on the holder of the `retention` lease. The change feed
//! runs on every collector: it streams incident changes made by any of them
//! to that collector's `gw502ctl incidents watch` clients.
//!
//! Each loop runs under the server's [`gw502_supervise::Supervisor`]: a panic
//! (or an error a loop cannot retry itself) restarts it with backoff and
//! counts `gw502_collector_loop_restarts_total{loop}`. A failed pass over the
//! store is only logged: the loop is alive and the next tick retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gw502_proto::v1::{EdgeObservation, IncidentEvent};
use gw502_vocab::Outcome;
use gw502_vocab::clock::now_ms;
use tokio::task::{AbortHandle, JoinSet};

use crate::edge::SiteTarget;
use crate::hub::Hub;
use crate::incidents::Evaluator;
use crate::sites::{HostIndex, site_views};
use crate::store::{ObservationRow, StoreError};

/// Probes `site` and stores each result as soon as it is known: the public
/// probe first, then its origins (an edge retrying a dead origin can hold
/// both for seconds each), waking the evaluator after each. A public probe
/// that starts a failure nudges the agents of the hosts serving the site
/// ([`Hub::probed`]).
async fn probe_and_store(hub: &Hub, site: &str, due: &Due) -> Result<(), StoreError> {
    let target = &due.target;
    let public = hub.prober.probe_public(target).await;
    let hosts: Vec<&str> = due.hosts.iter().map(String::as_str).collect();
    let o = &public.observation;
    let failed = Outcome::fails(o.outcome.parse().ok(), o.status);
    hub.probed(site, failed, &hosts, o.at_ms);
    store_observations(hub, site, std::slice::from_ref(&public.observation)).await?;
    let origins = hub.prober.probe_origins(target, &public).await;
    if !origins.is_empty() {
        store_observations(hub, site, &origins).await?;
    }
    Ok(())
}

async fn store_observations(
    hub: &Hub,
    site: &str,
    observations: &[EdgeObservation],
) -> Result<(), StoreError> {
    for observation in observations {
        hub.store
            .insert_observation(site, &ObservationRow::from_observation(observation))
            .await?;
    }
    hub.wake_site(site);
    Ok(())
}

async fn holds(hub: &Hub, lease: &str, ttl: Duration) -> bool {
    match hub
        .store
        .try_lease(lease, &hub.config.id, ttl.as_millis() as i64, now_ms())
        .await
    {
        Ok(held) => held,
        Err(error) => {
            tracing::warn!(lease, %error, "cannot renew lease");
            false
        }
    }
}

/// Probes every site with a URL whose lease this collector holds once per
/// `probe_interval`, each site on its own: a site whose probe is still running
/// (a hung origin holds a probe for the whole timeout, and again for each origin
/// behind an edge) is skipped for this tick and delays no other site.
pub async fn probe_loop(hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut tick = tokio::time::interval(hub.config.probe_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = JoinSet::new();
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    loop {
        tick.tick().await;
        // A panicking probe restarts the loop under the supervisor.
        while let Some(done) = probes.try_join_next() {
            if let Err(error) = done
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
        }
        running.retain(|_, probe| !probe.is_finished());
        let sites = match due_sites(&hub).await {
            Ok(sites) => sites,
            Err(error) => {
                tracing::warn!(%error, "edge probes failed");
                continue;
            }
        };
        for (name, due) in sites {
            if running.contains_key(&name) {
                metrics::counter!("gw502_collector_edge_probes_skipped_total").increment(1);
                tracing::debug!(site = %name, "edge probe still running, skipped this tick");
                continue;
            }
            let hub = hub.clone();
            let site = name.clone();
            let probe = probes.spawn(async move {
                if let Err(error) = probe_and_store(&hub, &site, &due).await {
                    tracing::warn!(%site, %error, "edge probe not stored");
                }
            });
            running.insert(name, probe);
        }
    }
}

/// A site due for a probe: what to probe, and the hosts serving it (whose agents a
/// failure nudges, with or without an address to probe).
struct Due {
    target: SiteTarget,
    hosts: Vec<String>,
}

/// The sites due for a probe now: those with a URL whose lease this collector holds.
async fn due_sites(hub: &Hub) -> Result<Vec<(String, Due)>, StoreError> {
    let hosts = hub.store.list_hosts().await?;
    let hosts = HostIndex::new(&hosts);
    Ok(site_views(hub)
        .await?
        .into_iter()
        .filter(|s| !s.url.is_empty() && hub.leases.holds(&s.name))
        .map(|s| {
            let serving = hosts.serving(&s);
            let due = Due {
                target: s.probe_target(&serving),
                hosts: serving.iter().map(|h| h.host_id.clone()).collect(),
            };
            (s.name, due)
        })
        .collect())
}

/// Re-evaluates the sites whose evidence changed as it arrives, and every
/// site at least every `evaluation_interval` (verdicts also change as old
/// evidence leaves the window), of the sites whose lease this collector
/// holds. Evidence that reached another collector is seen by the full pass.
pub async fn evaluate_loop(hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut evaluator = Evaluator::new(hub.clone());
    let interval = hub.config.evaluation_interval;
    let mut last_full = tokio::time::Instant::now();
    loop {
        // Wake-ups coalesce: a burst of reports costs one evaluation.
        let _ = tokio::time::timeout(interval, hub.wake.notified()).await;
        let dirty = hub.take_dirty();
        let started = std::time::Instant::now();
        let (pass, result) = if last_full.elapsed() >= interval {
            last_full = tokio::time::Instant::now();
            ("full", evaluator.evaluate_all().await)
        } else {
            ("changed", evaluator.evaluate_changed(&dirty).await)
        };
        if pass == "full" || !dirty.is_empty() {
            metrics::histogram!("gw502_collector_evaluation_seconds", "pass" => pass)
                .record(started.elapsed().as_secs_f64());
        }
        if let Err(error) = result {
            tracing::warn!(%error, "evaluation failed");
        }
    }
}

/// Streams incident changes from the store (made by any collector) to
/// watchers. Without a cursor it cannot start: that error goes to the
/// supervisor, which retries with backoff.
pub async fn change_feed(hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut cursor = hub.store.incident_change_cursor().await?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        match hub.store.incident_changes_since(cursor).await {
            Ok(changes) => {
                for (id, row, kind) in changes {
                    cursor = cursor.max(id);
                    let _ = hub.events.send(IncidentEvent {
                        kind,
                        incident: Some(row.to_proto()),
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read incident changes"),
        }
    }
}

/// Deletes history older than the retention period, hourly.
pub async fn retention_loop(hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if !holds(&hub, "retention", Duration::from_secs(2 * 3600)).await {
            continue;
        }
        let cutoff = now_ms() - hub.config.retention.as_millis() as i64;
        match hub.store.prune(cutoff).await {
            Ok(stats) => tracing::info!(
                reports = stats.reports,
                observations = stats.observations,
                incidents = stats.incidents,
                "pruned history"
            ),
            Err(error) => tracing::warn!(%error, "pruning failed"),
        }
    }
}
