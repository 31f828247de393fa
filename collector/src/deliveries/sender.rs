//! The sender of the delivery log: claims due rows per receiver, sends each
//! once per claim, and writes the outcome back (see the parent module for
//! the guarantees).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gw502_proto::v1::Incident;
use gw502_vocab::clock::now_ms;
use prost::Message;
use tokio::task::JoinSet;

use crate::hub::Hub;
use crate::routing::retry::Outcome;
use crate::routing::{Event, Receiver, Router, alertmanager, webhook};
use crate::store::{AttemptOutcome, ClaimedDelivery, StoreError};

pub use crate::routing::webhook::idempotency_key;

/// How often due rows are looked for without a wake-up (retries coming due,
/// rows written by other collectors, claims that expired).
const POLL: Duration = Duration::from_millis(500);

/// Claims and sends deliveries until the collector closes; then waits for
/// the sends in flight and returns (the server bounds that wait).
pub async fn sender_loop(hub: Arc<Hub>) -> Result<(), StoreError> {
    let mut closing = hub.closing.clone();
    let mut tasks: JoinSet<String> = JoinSet::new();
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    loop {
        if *closing.borrow() {
            break;
        }
        let router = hub.live().router.clone();
        for (name, receiver) in &router.receivers {
            let busy = in_flight.get(name).copied().unwrap_or(0);
            let free = router.limits.max_concurrent.saturating_sub(busy);
            if free == 0 {
                continue;
            }
            let ttl = claim_ttl(receiver, hub.config.lease_ttl);
            let claimed = match hub
                .store
                .claim_deliveries(name, &hub.config.id, ttl.as_millis() as i64, free as u32)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(receiver = %name, %error, "cannot claim deliveries");
                    break;
                }
            };
            for delivery in claimed {
                *in_flight.entry(name.clone()).or_default() += 1;
                tasks.spawn(send(
                    hub.clone(),
                    router.clone(),
                    receiver.clone(),
                    delivery,
                ));
            }
        }
        tokio::select! {
            // Closing, or the server is gone without saying so.
            changed = closing.changed() => if changed.is_err() { break },
            () = hub.outbox.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(name) = done
                    && let Some(n) = in_flight.get_mut(&name)
                {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }
    let waiting = tasks.len();
    if waiting > 0 {
        tracing::info!(in_flight = waiting, "finishing deliveries in flight");
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Lets go of this collector's claims (at shutdown, after the sends in
/// flight finished or the grace ran out), so another collector sends them
/// without waiting for the claims to expire.
pub async fn release(hub: &Hub) {
    match hub.store.release_deliveries(&hub.config.id).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "delivery claims released"),
        Err(error) => tracing::warn!(%error, "cannot release delivery claims"),
    }
}

/// How long a claim lasts: one request to the receiver and a lease period
/// to write the outcome.
fn claim_ttl(receiver: &Receiver, lease_ttl: Duration) -> Duration {
    let timeout = match receiver {
        Receiver::Webhook(hook) => hook.timeout,
        Receiver::Alertmanager(am) => am.timeout,
    };
    timeout + lease_ttl
}

/// Sends one claimed delivery once and records the outcome; returns the
/// receiver's name for the caller's in-flight count.
async fn send(
    hub: Arc<Hub>,
    router: Arc<Router>,
    receiver: Arc<Receiver>,
    delivery: ClaimedDelivery,
) -> String {
    let attempt = delivery.attempts + 1;
    let event = match delivery.event.as_str() {
        "resolved" => Event::Resolved,
        _ => Event::Firing,
    };
    let owner = Some(delivery.owner_override.as_str()).filter(|o| !o.is_empty());
    let outcome = match Incident::decode(delivery.incident.as_slice()) {
        Err(error) => Outcome::Permanent {
            status: None,
            error: format!("stored incident does not decode: {error}"),
        },
        // A firing that already failed once gives way to the newer event
        // waiting behind it (a resolve must not wait on a stale firing).
        Ok(_) if delivery.superseded && delivery.attempts > 0 => Outcome::Permanent {
            status: None,
            error: "superseded by a newer event for this incident".into(),
        },
        Ok(incident) => match &*receiver {
            Receiver::Webhook(hook) => {
                let body = serde_json::to_vec(&webhook::payload(&incident, event, owner))
                    .unwrap_or_default();
                webhook::send(&router.client, hook, Some(delivery.id), event, &body).await
            }
            Receiver::Alertmanager(am) => {
                let alert = alertmanager::alert(
                    &incident,
                    event,
                    owner,
                    now_ms(),
                    am.generator_url.as_deref(),
                );
                alertmanager::post(&router.client, am, std::slice::from_ref(&alert)).await
            }
        },
    };
    let max_attempts = router.retry.max_attempts.max(1);
    let (state, http_status, error) = match outcome {
        Outcome::Delivered { status } => ("delivered", status, String::new()),
        Outcome::Permanent { status, error } => ("failed", status.unwrap_or(0), error),
        Outcome::Retry { status, error } if attempt >= max_attempts => {
            ("failed", status.unwrap_or(0), error)
        }
        Outcome::Retry { status, error } => ("pending", status.unwrap_or(0), error),
    };
    let retry_in = router.retry.delay(attempt, rand::random::<f64>());
    let record = AttemptOutcome {
        state,
        attempts: attempt,
        at_ms: now_ms(),
        error,
        http_status,
        retry_in_ms: retry_in.as_millis() as i64,
    };
    finish(&hub, &delivery, &record).await;
    metrics::counter!("gw502_routing_deliveries_total", "receiver" => delivery.receiver.clone(), "state" => state)
        .increment(1);
    let (id, incident_id) = (delivery.id, delivery.incident_id);
    match state {
        "delivered" => {
            tracing::info!(receiver = %delivery.receiver, incident_id, delivery_id = id, event = event.as_str(), attempt, "incident delivered");
        }
        "pending" => {
            tracing::warn!(receiver = %delivery.receiver, incident_id, delivery_id = id, attempt, error = %record.error, retry_in_ms = record.retry_in_ms, "incident delivery failed, will retry");
        }
        _ => {
            tracing::warn!(receiver = %delivery.receiver, incident_id, delivery_id = id, attempt, error = %record.error, "incident delivery failed");
        }
    }
    delivery.receiver
}

/// Writes the outcome, retrying while the database is away for up to the
/// claim's lifetime; after that the claim has expired and the row will be
/// sent again under the same idempotency key.
async fn finish(hub: &Hub, delivery: &ClaimedDelivery, record: &AttemptOutcome) {
    let deadline = tokio::time::Instant::now() + hub.config.lease_ttl;
    let mut pause = Duration::from_millis(200);
    loop {
        match hub
            .store
            .finish_delivery(delivery.id, &hub.config.id, record)
            .await
        {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    delivery_id = delivery.id,
                    "delivery claim lost before its outcome was written"
                );
                return;
            }
            Err(error) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(delivery_id = delivery.id, %error, "cannot record delivery outcome, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(delivery_id = delivery.id, %error, "cannot record delivery outcome; it will be sent again with the same key");
                return;
            }
        }
    }
}
