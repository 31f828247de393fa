//! One receiver's lane: takes deliveries off its bounded queue, runs each
//! in its own task (at most `max_concurrent` at once) through the retry
//! loop, and for Alertmanager re-sends the alerts of open incidents every
//! `resend_interval`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gw502_vocab::clock::now_ms;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use super::dispatch::{Job, LaneMsg};
use super::keepalive::{KeepAlive, OpenIncidents};
use super::log::{DeliveryLog, DeliveryState, Event};
use super::receiver::Receiver;
use super::retry::{self, Outcome};
use super::rules::Router;
use super::{alertmanager, webhook};

/// The deliveries of one receiver.
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) receiver: Arc<Receiver>,
    pub(crate) router: Arc<Router>,
    pub(crate) log: Arc<dyn DeliveryLog>,
    /// Incident id to the sequence number of its newest job; an older job
    /// still retrying gives up (a resolve must not be overtaken by a stale firing).
    pub(crate) latest: Mutex<HashMap<u64, u64>>,
    /// Keeps an Alertmanager re-send and a resolve from crossing on the wire.
    pub(crate) order: Arc<tokio::sync::Mutex<()>>,
}

impl Lane {
    /// Serves the lane until its queue closes or `stop` changes.
    pub(crate) async fn run(
        self: Arc<Self>,
        rx: &mut mpsc::Receiver<LaneMsg>,
        mut stop: watch::Receiver<bool>,
    ) {
        let semaphore = Arc::new(Semaphore::new(self.router.limits.max_concurrent));
        let mut tasks = JoinSet::new();
        let resend = match &*self.receiver {
            Receiver::Alertmanager(am) => Some(am.resend_interval),
            Receiver::Webhook(_) => None,
        };
        let period = resend.unwrap_or(Duration::from_secs(3600));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut open = KeepAlive::default();
        let mut resender: Option<JoinHandle<()>> = None;
        let mut seq = 0u64;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tick.tick(), if resend.is_some() => {
                    if resender.as_ref().is_none_or(|t| t.is_finished()) && !open.is_empty() {
                        resender = Some(tokio::spawn(self.clone().resend(open.snapshot())));
                    }
                }
                msg = rx.recv() => match msg {
                    None => break,
                    Some(LaneMsg::Track(job)) => {
                        if resend.is_some() {
                            open.track(&job);
                        }
                    }
                    Some(LaneMsg::Refresh(list)) => {
                        open.replace(list);
                        tick.reset_immediately();
                    }
                    Some(LaneMsg::Retain(sites)) => open.retain(&sites),
                    Some(LaneMsg::Deliver(job)) => {
                        if resend.is_some() {
                            open.track(&job);
                        }
                        seq += 1;
                        self.set_latest(job.incident.id, seq);
                        let permit = tokio::select! {
                            permit = semaphore.clone().acquire_owned() => match permit {
                                Ok(permit) => permit,
                                Err(_) => break,
                            },
                            _ = stop.changed() => break,
                        };
                        tasks.spawn(self.clone().deliver(job, seq, permit));
                    }
                },
            }
        }
        if let Some(task) = resender {
            task.abort();
        }
        tracing::debug!(receiver = %self.name, abandoned = tasks.len(), "routing lane stopped");
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_latest(&self, incident_id: u64, seq: u64) {
        self.latest().insert(incident_id, seq);
    }

    fn superseded(&self, incident_id: u64, seq: u64) -> bool {
        self.latest()
            .get(&incident_id)
            .is_some_and(|&newest| newest != seq)
    }

    async fn deliver(self: Arc<Self>, job: Job, seq: u64, _permit: OwnedSemaphorePermit) {
        let incident_id = job.incident.id;
        let delivery_id = match self.log.begin(incident_id, &self.name, job.event).await {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(receiver = %self.name, incident_id, error = %e, "cannot record delivery, sending anyway");
                None
            }
        };
        let owner = job.owner_override.as_deref();
        let policy = self.router.retry;
        let client = &self.router.client;
        let lane = &*self;
        let event = job.event;
        let superseded = move || Outcome::Permanent {
            status: None,
            error: "superseded by a newer event for this incident".into(),
        };
        let state = match &*self.receiver {
            Receiver::Webhook(hook) => {
                let payload = webhook::payload(&job.incident, event, owner);
                // Plain structs of strings and numbers (non-finite floats
                // become null): serializing cannot fail.
                let body = serde_json::to_vec(&payload).unwrap_or_default();
                let body = &body;
                retry::deliver(&policy, &*self.log, delivery_id, move |_| async move {
                    if lane.superseded(incident_id, seq) {
                        return superseded();
                    }
                    webhook::send(client, hook, delivery_id, event, body).await
                })
                .await
            }
            Receiver::Alertmanager(am) => {
                let alert = alertmanager::alert(
                    &job.incident,
                    event,
                    owner,
                    now_ms(),
                    am.generator_url.as_deref(),
                );
                let alerts = std::slice::from_ref(&alert);
                retry::deliver(&policy, &*self.log, delivery_id, move |_| async move {
                    let _order = match event {
                        Event::Resolved => Some(lane.order.lock().await),
                        Event::Firing => None,
                    };
                    if lane.superseded(incident_id, seq) {
                        return superseded();
                    }
                    alertmanager::post(client, am, alerts).await
                })
                .await
            }
        };
        {
            let mut latest = self.latest();
            if latest.get(&incident_id) == Some(&seq) {
                latest.remove(&incident_id);
            }
        }
        metrics::counter!("gw502_routing_deliveries_total", "receiver" => self.name.clone(), "state" => state.as_str())
            .increment(1);
        match state {
            DeliveryState::Delivered => {
                tracing::info!(receiver = %self.name, incident_id, event = event.as_str(), "incident delivered");
            }
            _ => {
                tracing::warn!(receiver = %self.name, incident_id, event = event.as_str(), "incident delivery failed");
            }
        }
    }

    /// Re-sends the alerts of open incidents, once; the next tick is the retry.
    async fn resend(self: Arc<Self>, open: OpenIncidents) {
        let Receiver::Alertmanager(am) = &*self.receiver else {
            return;
        };
        let now = now_ms();
        let alerts: Vec<_> = open
            .iter()
            .map(|(incident, owner)| {
                alertmanager::alert(
                    incident,
                    Event::Firing,
                    owner.as_deref(),
                    now,
                    am.generator_url.as_deref(),
                )
            })
            .collect();
        let _order = self.order.lock().await;
        for chunk in alerts.chunks(500) {
            match alertmanager::post(&self.router.client, am, chunk).await {
                Outcome::Delivered { .. } => {}
                Outcome::Retry { status, error } | Outcome::Permanent { status, error } => {
                    metrics::counter!("gw502_routing_resend_failures_total", "receiver" => self.name.clone())
                        .increment(1);
                    tracing::warn!(receiver = %self.name, status, error, "alertmanager re-send failed");
                    return;
                }
            }
        }
        tracing::debug!(receiver = %self.name, alerts = alerts.len(), "alertmanager alerts re-sent");
    }
}
