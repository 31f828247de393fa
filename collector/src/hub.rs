//! The state every part of a running collector shares: the store, the config,
//! the auth mode, the incident event stream and the evaluator's wake-up bell
//! with what rang it.

use std::collections::BTreeSet;
use std::sync::Mutex;

use gw502_proto::v1::IncidentEvent;
use tokio::sync::{Notify, broadcast, watch};

use crate::auth::Mode;
use crate::config::Config;
use crate::edge::EdgeProber;
use crate::routing::DispatcherHandle;
use crate::store::Store;

/// Shared collector state.
pub struct Hub {
    /// Reports, sites, incidents.
    pub store: Store,
    /// The validated config.
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
    /// Escalation deliveries.
    pub dispatcher: DispatcherHandle,
    /// Turns true when the collector shuts down, ending open watch streams
    /// (a graceful shutdown otherwise waits for them forever).
    pub closing: watch::Receiver<bool>,
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
