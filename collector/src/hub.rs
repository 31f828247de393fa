//! The state every part of a running collector shares: the store, the config,
//! the auth mode, the incident event stream and the evaluator's wake-up bell
//! with what rang it. The parts SIGHUP reloads (sites, routing and the
//! dispatcher built from it) sit in [`Live`], swapped whole.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use gw502_proto::v1::IncidentEvent;
use tokio::sync::{Notify, broadcast, watch};

use crate::auth::Mode;
use crate::config::{Config, SiteConfig};
use crate::edge::EdgeProber;
use crate::leases::SiteLeases;
use crate::reload::ReloadHooks;
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

    /// Takes what arrived since the last call.
    pub fn take_dirty(&self) -> Dirty {
        self.dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}
