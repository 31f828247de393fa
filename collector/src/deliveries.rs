//! The escalation delivery log kept in the store, so `gw502ctl deliveries`
//! and `incidents show` can say what was sent where and how it went.

use futures::future::BoxFuture;

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
