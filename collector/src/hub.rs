//! The state every part of a running collector shares: the store, the config,
//! the auth mode, the incident event stream and the evaluator's wake-up bell.

use std::time::{SystemTime, UNIX_EPOCH};

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
    /// Probes of public sites.
    pub prober: EdgeProber,
    /// Escalation deliveries.
    pub dispatcher: DispatcherHandle,
    /// Turns true when the collector shuts down, ending open watch streams
    /// (a graceful shutdown otherwise waits for them forever).
    pub closing: watch::Receiver<bool>,
}

impl Hub {
    /// New evidence from `host`: re-evaluate soon.
    pub fn wake_host(&self, host: &str) {
        tracing::trace!(host, "evidence arrived");
        self.wake.notify_one();
    }

    /// New evidence about `site`: re-evaluate soon.
    pub fn wake_site(&self, site: &str) {
        tracing::trace!(site, "observation arrived");
        self.wake.notify_one();
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
