//! The state every part of a running collector shares: the store, the config,
//! the auth mode, the incident event stream and the evaluator's wake-up bell
//! with what rang it. The parts SIGHUP reloads (sites, routing and the
//! dispatcher built from it) sit in [`Live`], swapped whole. Also the set of
//! site leases this collector holds ([`SiteLeases`], kept by
//! [`crate::leases`]) and the hooks a reload calls ([`ReloadHooks`]), and the
//! nudges that ask agents to report at once when a site starts failing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use gw502_proto::v1::{IncidentEvent, Nudge};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::auth::Mode;
use crate::config::{Config, SiteConfig};
use crate::edge::EdgeProber;
use crate::routing::{DispatcherHandle, Router};
use crate::store::Store;

/// Shared collector state.
pub struct Hub {
    /// Reports, sites, incidents.
    pub store: Store,
    /// The validated config as loaded at start; its sites and routing are
    /// superseded by [`Hub::live`] after a reload.
    pub config: Config,
    /// Whether callers carry certificates.
    pub mode: Mode,
    /// Incident changes, for `WatchIncidents`.
    pub events: broadcast::Sender<IncidentEvent>,
    /// Rung when new evidence arrived.
    pub wake: Notify,
    /// What arrived since the evaluator last looked.
    pub dirty: Mutex<Dirty>,
    /// Probes of public sites.
    pub prober: EdgeProber,
    /// Sites, routing and the dispatcher, replaced on reload.
    pub live: RwLock<Arc<Live>>,
    /// The sites this collector probes and evaluates.
    pub leases: SiteLeases,
    /// Rung when deliveries were written to the delivery log.
    pub outbox: Notify,
    /// Called with each config a reload puts in force (e.g. the CRL).
    pub reload_hooks: ReloadHooks,
    /// Turns true when the collector shuts down, ending open watch streams
    /// (a graceful shutdown otherwise waits for them forever).
    pub closing: watch::Receiver<bool>,
    /// Nudges for the agents' `Nudges` streams, each stream taking its host's.
    pub nudges: broadcast::Sender<HostNudge>,
    /// Which sites are failing their public probes: a nudge goes out when one starts.
    pub failing: Mutex<Onsets>,
}

/// The sites whose last public probe failed.
#[derive(Debug, Default)]
pub struct Onsets(BTreeSet<String>);

impl Onsets {
    /// Records `site`'s latest public probe; true when it starts a failure.
    pub fn started(&mut self, site: &str, failed: bool) -> bool {
        if failed {
            self.0.insert(site.to_string())
        } else {
            self.0.remove(site);
            false
        }
    }
}

/// A nudge for one host's agent.
#[derive(Debug, Clone)]
pub struct HostNudge {
    /// The host whose agent is to report.
    pub host_id: String,
    /// What to tell it.
    pub nudge: Nudge,
}

/// What a config reload replaces.
pub struct Live {
    /// The configured sites.
    pub sites: Vec<SiteConfig>,
    /// Escalation routing.
    pub router: Arc<Router>,
    /// Alertmanager keep-alive lanes built from `router`.
    pub dispatcher: DispatcherHandle,
    /// Stops the lanes of a reloaded dispatcher when this is replaced (dropped).
    pub lanes: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Live {
    /// The live part of `config` with a dispatcher already spawned for it.
    pub fn new(config: &Config, dispatcher: DispatcherHandle) -> RwLock<Arc<Live>> {
        RwLock::new(Arc::new(Live {
            sites: config.sites.clone(),
            router: Arc::new(config.router.clone()),
            dispatcher,
            lanes: None,
        }))
    }
}

/// Hosts that reported and sites that were probed since the last evaluation,
/// so a pass re-evaluates only the sites whose evidence changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    /// Host ids that reported.
    pub hosts: BTreeSet<String>,
    /// Their interface addresses (a site's URL may name one).
    pub addresses: BTreeSet<String>,
    /// Site names with new observations.
    pub sites: BTreeSet<String>,
}

impl Dirty {
    /// Nothing arrived.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.sites.is_empty()
    }
}

impl Hub {
    /// The sites, routing and dispatcher in force now.
    pub fn live(&self) -> Arc<Live> {
        self.live
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Puts a reloaded config's sites and routing in force; returns the old ones.
    pub fn replace_live(&self, live: Live) -> Arc<Live> {
        let mut guard = self.live.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *guard, Arc::new(live))
    }

    /// New evidence from `host`: re-evaluate the sites it serves soon.
    pub fn wake_host(&self, host: &str, addresses: &[String]) {
        tracing::trace!(host, "evidence arrived");
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.hosts.insert(host.to_string());
            dirty.addresses.extend(addresses.iter().cloned());
        }
        self.wake.notify_one();
    }

    /// New evidence about `site`: re-evaluate it soon.
    pub fn wake_site(&self, site: &str) {
        tracing::trace!(site, "observation arrived");
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.sites.insert(site.to_string());
        }
        self.wake.notify_one();
    }

    /// Records whether `site`'s public probe failed; when it starts failing, asks the
    /// agents of `hosts` (those serving the site) to report at once rather than at their next
    /// tick, so the evidence that explains the failure comes while it is fresh. A site
    /// that keeps failing nudges nobody again: the agents' ticks carry on from there.
    pub fn probed(&self, site: &str, failed: bool, hosts: &[&str], at_ms: i64) {
        let started = self
            .failing
            .lock()
            .is_ok_and(|mut failing| failing.started(site, failed));
        if !started {
            return;
        }
        for host in hosts {
            tracing::debug!(site, host, "site started failing, nudging its agent");
            // No stream open (an older agent, none connected here) is no error.
            let _ = self.nudges.send(HostNudge {
                host_id: (*host).to_string(),
                nudge: Nudge {
                    site: site.to_string(),
                    at_ms,
                },
            });
        }
        metrics::counter!("gw502_collector_nudges_total").increment(hosts.len() as u64);
    }

    /// Takes what arrived since the last call.
    pub fn take_dirty(&self) -> Dirty {
        self.dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}

/// The sites this collector holds the lease of, each with the instant until
/// which the holding counts.
#[derive(Debug, Default)]
pub struct SiteLeases {
    held: Mutex<BTreeMap<String, Instant>>,
    /// Sites claimed at least once, held or not.
    known: Mutex<BTreeSet<String>>,
}

impl SiteLeases {
    /// Whether this collector may probe and evaluate `site` now.
    pub fn holds(&self, site: &str) -> bool {
        let now = Instant::now();
        self.lock().get(site).is_some_and(|until| *until > now)
    }

    /// The sites held now.
    pub fn held(&self) -> BTreeSet<String> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(site, _)| site.clone())
            .collect()
    }

    /// Of `sites`, those never claimed yet (new in the config or just
    /// discovered).
    pub(crate) fn unknown<'a>(&self, sites: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        sites
            .into_iter()
            .filter(|s| !known.contains(*s))
            .map(str::to_owned)
            .collect()
    }

    pub(crate) fn set(&self, site: &str, until: Option<Instant>) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(site.to_owned());
        let mut held = self.lock();
        match until {
            Some(until) => {
                held.insert(site.to_owned(), until);
            }
            None => {
                held.remove(site);
            }
        }
    }

    pub(crate) fn retain(&self, sites: &BTreeSet<String>) {
        self.lock().retain(|site, _| sites.contains(site));
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|site| sites.contains(site));
    }

    /// Forgets every lease (before releasing them in the store).
    pub fn clear(&self) {
        self.lock().clear();
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Called with every config put in force by a reload; returns the problems
/// it met (logged, each with the hook's name). A hook that fails keeps its
/// own previous state.
pub type ReloadHook = Box<dyn Fn(&Config) -> Result<(), Vec<String>> + Send + Sync>;

/// The hooks run on reload, in registration order.
#[derive(Default)]
pub struct ReloadHooks {
    hooks: Mutex<Vec<(&'static str, ReloadHook)>>,
}

impl std::fmt::Debug for ReloadHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.lock().iter().map(|(name, _)| *name).collect();
        f.debug_struct("ReloadHooks")
            .field("hooks", &names)
            .finish()
    }
}

impl ReloadHooks {
    /// Adds a hook called `name` (used in logs).
    pub fn register(&self, name: &'static str, hook: ReloadHook) {
        self.lock().push((name, hook));
    }

    /// Runs every hook; returns `(hook, problem)` for each problem reported.
    pub fn run(&self, config: &Config) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for (name, hook) in self.lock().iter() {
            if let Err(found) = hook(config) {
                problems.extend(found.into_iter().map(|p| (*name, p)));
            }
        }
        problems
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, ReloadHook)>> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_counts_only_until_its_local_deadline() {
        let leases = SiteLeases::default();
        let now = Instant::now();
        leases.set("shop", Some(now + Duration::from_secs(10)));
        leases.set("blog", None);
        assert!(leases.holds("shop"));
        assert!(!leases.holds("blog"), "held by another collector");
        assert_eq!(leases.held(), BTreeSet::from(["shop".to_string()]));
        assert!(
            leases.unknown(["shop", "blog", "new"]) == ["new"],
            "both were claimed once"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!leases.holds("shop"), "a renewal that never came ends it");
        leases.retain(&BTreeSet::from(["blog".to_string()]));
        assert_eq!(
            leases.unknown(["shop"]),
            ["shop"],
            "forgotten with its site"
        );
        leases.clear();
        assert_eq!(leases.unknown(["blog"]), ["blog"]);
    }

    #[test]
    fn every_hook_runs_and_every_problem_is_named() {
        let hooks = ReloadHooks::default();
        hooks.register(
            "crl",
            Box::new(|_| Err(vec!["bad pem".into(), "expired".into()])),
        );
        hooks.register("ok", Box::new(|_| Ok(())));
        hooks.register("other", Box::new(|_| Err(vec!["unreadable".into()])));
        let config = crate::config::RawConfig {
            tls: crate::config::RawTls {
                plaintext: true,
                ..Default::default()
            },
            listen: Some("127.0.0.1:7502".into()),
            ..Default::default()
        }
        .validate(std::path::Path::new("t"), Default::default())
        .expect("valid");
        assert_eq!(
            hooks.run(&config),
            [
                ("crl", "bad pem".to_string()),
                ("crl", "expired".to_string()),
                ("other", "unreadable".to_string())
            ]
        );
    }

    /// A site nudges once when it starts failing, not on every failed probe, and
    /// again only after a healthy probe.
    #[test]
    fn a_failure_starts_once_per_run_of_failed_probes() {
        let mut onsets = Onsets::default();
        let probes = [false, true, true, true, false, true, true];
        let started: Vec<bool> = probes.iter().map(|f| onsets.started("shop", *f)).collect();
        assert_eq!(started, [false, true, false, false, false, true, false]);
        assert!(onsets.started("blog", true), "each site on its own");
    }
}
