//! The dispatcher: turns incident events into deliveries. Each receiver has
//! its own lane (a bounded queue and a bounded number of delivery tasks), so
//! a slow or dead receiver only ever delays itself; when a lane's queue is
//! full the delivery is dropped, counted and logged. Alertmanager lanes also
//! re-send the alerts of open incidents every `resend_interval`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gw502_proto::v1::Incident;
use gw502_supervise::Supervisor;
use tokio::sync::{mpsc, watch};

use super::keepalive::OpenIncidents;
use super::lane::Lane;
use super::log::{DeliveryLog, Event};
use super::receiver::Receiver;
use super::rules::Router;

/// Starts delivery of routed incidents; see [`Dispatcher::spawn`].
#[derive(Debug)]
pub struct Dispatcher;

/// Feeds incident events to a running dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct DispatcherHandle {
    router: Arc<Router>,
    lanes: Arc<BTreeMap<String, mpsc::Sender<LaneMsg>>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for DispatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherHandle")
            .field("lanes", &self.lanes.keys().collect::<Vec<_>>())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// One delivery to do.
pub(crate) struct Job {
    pub(crate) incident: Arc<Incident>,
    pub(crate) owner_override: Option<String>,
    pub(crate) event: Event,
}

/// What a lane is told.
pub(crate) enum LaneMsg {
    /// Deliver this.
    Deliver(Job),
    /// The complete set of open incidents routed to this lane to keep alive
    /// (re-sent at once).
    Refresh(OpenIncidents),
    /// Stop keeping alive the incidents of sites not in the set (leases lost).
    Retain(Arc<BTreeSet<String>>),
    /// Keep this incident's alert alive (firing) or stop (resolved); the
    /// delivery itself goes through the delivery log.
    Track(Job),
}

impl Dispatcher {
    /// Starts one lane per receiver on the current tokio runtime, each under
    /// `supervisor` (a lane that panics restarts on the same queue). Deliveries
    /// stop when `shutdown` completes; retries still waiting are abandoned
    /// (their last logged state stays `pending`).
    pub fn spawn(
        router: Arc<Router>,
        log: Arc<dyn DeliveryLog>,
        shutdown: impl Future<Output = ()> + Send + 'static,
        supervisor: &Supervisor,
    ) -> DispatcherHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut lanes = BTreeMap::new();
        for (name, receiver) in &router.receivers {
            let (tx, rx) = mpsc::channel(router.limits.queue_capacity);
            let lane = Arc::new(Lane {
                name: name.clone(),
                receiver: receiver.clone(),
                router: router.clone(),
                log: log.clone(),
                latest: Mutex::new(HashMap::new()),
                order: Arc::new(tokio::sync::Mutex::new(())),
            });
            // The queue outlives a lane that panicked: the next run takes it.
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let stop = stop_rx.clone();
            supervisor.spawn("routing_lane", move || {
                let (lane, rx, stop) = (lane.clone(), rx.clone(), stop.clone());
                async move {
                    lane.run(&mut *rx.lock().await, stop).await;
                    Ok::<(), std::convert::Infallible>(())
                }
            });
            lanes.insert(name.clone(), tx);
        }
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        DispatcherHandle {
            router,
            lanes: Arc::new(lanes),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl DispatcherHandle {
    /// Routes an incident event and queues one delivery per route. Never
    /// waits: a delivery whose lane is full (or stopped) is dropped, counted
    /// in `gw502_routing_dropped_total` and logged. Returns how many were queued.
    pub fn notify(
        &self,
        mut incident: Incident,
        site_labels: &BTreeMap<String, String>,
        event: Event,
    ) -> usize {
        incident.labels = site_labels.clone().into_iter().collect();
        let routes = self.router.route(&incident, site_labels);
        let incident = Arc::new(incident);
        let mut queued = 0;
        for route in routes {
            let job = Job {
                incident: incident.clone(),
                owner_override: route.owner_override,
                event,
            };
            if self.enqueue(&route.receiver, LaneMsg::Deliver(job)) {
                queued += 1;
            }
        }
        queued
    }

    /// Tells the Alertmanager lanes an incident routes to that it fired or
    /// resolved, so they keep re-sending exactly the open ones. Sends nothing
    /// itself: the delivery log's sender delivers the change.
    pub fn track(&self, incident: Incident, site_labels: &BTreeMap<String, String>, event: Event) {
        let routes = self.router.route(&incident, site_labels);
        let incident = Arc::new(incident);
        for route in routes {
            let keeps_alive = self
                .router
                .receivers
                .get(&route.receiver)
                .is_some_and(|r| matches!(**r, Receiver::Alertmanager(_)));
            if keeps_alive {
                let job = Job {
                    incident: incident.clone(),
                    owner_override: route.owner_override,
                    event,
                };
                self.enqueue(&route.receiver, LaneMsg::Track(job));
            }
        }
    }

    /// Tells every Alertmanager lane which incidents to keep alive now (the
    /// open incidents of the sites whose lease this collector holds, from the
    /// store), replacing what it re-sends, and re-sends at once.
    pub fn refresh(&self, open: impl IntoIterator<Item = (Incident, BTreeMap<String, String>)>) {
        let mut per_lane: BTreeMap<&str, OpenIncidents> = self
            .router
            .receivers
            .iter()
            .filter(|(_, r)| matches!(***r, Receiver::Alertmanager(_)))
            .map(|(name, _)| (name.as_str(), Vec::new()))
            .collect();
        for (incident, labels) in open {
            let routes = self.router.route(&incident, &labels);
            let incident = Arc::new(incident);
            for route in routes {
                if let Some(list) = per_lane.get_mut(route.receiver.as_str()) {
                    list.push((incident.clone(), route.owner_override));
                }
            }
        }
        for (name, list) in per_lane {
            self.enqueue(name, LaneMsg::Refresh(list));
        }
    }

    /// Tells every Alertmanager lane to stop keeping alive the incidents of
    /// sites not in `sites` (their lease went to another collector). Needs no
    /// store, so it works while the database is away.
    pub fn retain(&self, sites: &BTreeSet<String>) {
        let sites = Arc::new(sites.clone());
        for (name, receiver) in &self.router.receivers {
            if matches!(**receiver, Receiver::Alertmanager(_)) {
                self.enqueue(name, LaneMsg::Retain(sites.clone()));
            }
        }
    }

    /// Deliveries dropped so far because a lane was full or stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn enqueue(&self, receiver: &str, msg: LaneMsg) -> bool {
        let Some(lane) = self.lanes.get(receiver) else {
            // Validation guarantees routes name configured receivers.
            tracing::error!(receiver, "route names an unknown receiver");
            return false;
        };
        let reason = match lane.try_send(msg) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full(_)) => "queue_full",
            Err(mpsc::error::TrySendError::Closed(_)) => "stopped",
        };
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gw502_routing_dropped_total", "receiver" => receiver.to_owned(), "reason" => reason)
            .increment(1);
        tracing::warn!(receiver, reason, "routing delivery dropped");
        false
    }
}
