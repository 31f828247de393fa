//! The escalation delivery log kept in the store, and its sender.
//!
//! The log is the source of truth for notifications: every incident change
//! that notifies writes one pending row per routed receiver in the change's
//! own transaction (`store/outbox.rs`), so a change without its deliveries,
//! or deliveries of a change that rolled back, cannot exist. [`sender_loop`]
//! runs on every collector: per receiver it claims due rows up to the
//! receiver's concurrency limit (a claim is a lease on the row for the
//! receiver's timeout plus `lease_ttl`), sends each in its own task, and
//! records the outcome. A hanging or failing receiver only ties up its own
//! slots; other receivers keep going. A failure that may pass (5xx, 408,
//! 429, a timeout, a refused connection) is retried with capped exponential
//! backoff by making the row due again later, so a retry waits in the
//! database, not in a task, and survives the collector.
//!
//! Exactly once, and the one window no sender can close: a collector that
//! dies after the receiver took a delivery but before marking it delivered
//! leaves the row claimed; when the claim expires another collector sends it
//! again. The redelivery carries the same `Idempotency-Key` (and
//! `X-Gw502-Delivery`) as the first, the row id, so a webhook receiver that
//! keeps the keys it has seen acts once, and Alertmanager, which dedupes
//! alerts by their labels, shows one alert.
//!
//! [`StoreDeliveryLog`] is the [`DeliveryLog`] of the routing lanes (which
//! now only keep Alertmanager alerts alive).

mod sender;

use futures::future::BoxFuture;

pub use sender::{idempotency_key, release, sender_loop};

use crate::routing::{DeliveryAttempt, DeliveryLog, DeliveryLogError, Event};
use crate::store::{NewDelivery, Store};
use gw502_vocab::clock::now_ms;

/// [`DeliveryLog`] over the collector's store.
pub struct StoreDeliveryLog {
    store: Store,
}

impl StoreDeliveryLog {
    /// A log writing to `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl DeliveryLog for StoreDeliveryLog {
    fn begin<'a>(
        &'a self,
        incident_id: u64,
        receiver: &'a str,
        event: Event,
    ) -> BoxFuture<'a, Result<i64, DeliveryLogError>> {
        Box::pin(async move {
            let delivery = NewDelivery {
                incident_id: incident_id as i64,
                receiver: receiver.to_string(),
                event: event.as_str().to_string(),
                at_ms: now_ms(),
            };
            self.store.insert_delivery(&delivery).await.map_err(boxed)
        })
    }

    fn attempt(
        &self,
        delivery_id: i64,
        attempt: DeliveryAttempt,
    ) -> BoxFuture<'_, Result<(), DeliveryLogError>> {
        Box::pin(async move {
            self.store
                .update_delivery(
                    delivery_id,
                    attempt.state.as_str(),
                    attempt.attempt,
                    attempt.at_ms,
                    attempt.error.as_deref().unwrap_or(""),
                    attempt.http_status.unwrap_or(0),
                )
                .await
                .map_err(boxed)
        })
    }
}

fn boxed(error: crate::store::StoreError) -> DeliveryLogError {
    DeliveryLogError {
        source: Box::new(error),
    }
}
