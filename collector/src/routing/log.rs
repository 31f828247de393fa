//! The delivery log: where the dispatcher records every delivery and each
//! attempt at it. The collector implements [`DeliveryLog`] over its store so
//! `gw502ctl deliveries` can show what was sent where; [`MemoryDeliveryLog`]
//! keeps the same records in memory for tests and dry runs.

use std::error::Error as StdError;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;

/// What happened to an incident, as told to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The incident is open (newly, or its verdict changed).
    Firing,
    /// The incident is resolved.
    Resolved,
}

impl Event {
    /// The wire word: `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Firing => "firing",
            Event::Resolved => "resolved",
        }
    }
}

/// Where a delivery stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// The attempt failed and another one will follow.
    Pending,
    /// The receiver accepted the delivery.
    Delivered,
    /// The delivery was given up: a permanent error or no attempts left.
    Failed,
}

impl DeliveryState {
    /// The word stored and shown: `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// The outcome of one try at delivering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1 for the first try.
    pub attempt: u32,
    /// The delivery's state after this try.
    pub state: DeliveryState,
    /// The HTTP status the receiver answered, if it answered.
    pub http_status: Option<u16>,
    /// Why the try failed, if it did.
    pub error: Option<String>,
    /// When the try finished, unix milliseconds.
    pub at_ms: i64,
}

/// A delivery log backend failed.
#[derive(Debug, thiserror::Error)]
#[error("delivery log: {source}")]
pub struct DeliveryLogError {
    /// What the backend reported.
    #[from]
    pub source: Box<dyn StdError + Send + Sync>,
}

/// Records deliveries and their attempts. Implemented by the store; the
/// dispatcher calls it from many tasks at once.
pub trait DeliveryLog: Send + Sync + 'static {
    /// Records a new delivery of `event` for an incident to a receiver and
    /// returns its id (also sent to webhooks as `X-Gw502-Delivery`).
    fn begin<'a>(
        &'a self,
        incident_id: u64,
        receiver: &'a str,
        event: Event,
    ) -> BoxFuture<'a, Result<i64, DeliveryLogError>>;

    /// Records one attempt of a delivery started with [`DeliveryLog::begin`].
    fn attempt(
        &self,
        delivery_id: i64,
        attempt: DeliveryAttempt,
    ) -> BoxFuture<'_, Result<(), DeliveryLogError>>;
}

/// One delivery as kept by [`MemoryDeliveryLog`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The id [`DeliveryLog::begin`] returned.
    pub id: i64,
    /// The incident delivered.
    pub incident_id: u64,
    /// The receiver's name.
    pub receiver: String,
    /// Firing or resolved.
    pub event: Event,
    /// Every attempt so far, in order.
    pub attempts: Vec<DeliveryAttempt>,
}

impl DeliveryRecord {
    /// The state after the last attempt (`Pending` before the first).
    pub fn state(&self) -> DeliveryState {
        self.attempts
            .last()
            .map_or(DeliveryState::Pending, |a| a.state)
    }
}

/// The most deliveries [`MemoryDeliveryLog`] keeps; older ones are forgotten.
pub const MEMORY_LOG_CAPACITY: usize = 10_000;

/// A [`DeliveryLog`] in memory, for tests and dry runs. Keeps the newest
/// [`MEMORY_LOG_CAPACITY`] deliveries.
#[derive(Debug)]
pub struct MemoryDeliveryLog {
    records: Mutex<(i64, Vec<DeliveryRecord>)>,
    changed: watch::Sender<u64>,
}

impl Default for MemoryDeliveryLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryDeliveryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            records: Mutex::new((0, Vec::new())),
            changed: watch::channel(0).0,
        }
    }

    /// A copy of every delivery kept, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().1.clone()
    }

    /// Waits until `done` holds for the deliveries, at most `limit`; returns
    /// them when it does, `None` on timeout.
    pub async fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&[DeliveryRecord]) -> bool,
    ) -> Option<Vec<DeliveryRecord>> {
        let mut changes = self.changed.subscribe();
        let wait = async {
            loop {
                let now = self.deliveries();
                if done(&now) {
                    return now;
                }
                // The sender lives in self, so this never reports closed.
                let _ = changes.changed().await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (i64, Vec<DeliveryRecord>)> {
        // A panic while holding the lock cannot leave the records torn.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }
}

impl DeliveryLog for MemoryDeliveryLog {
    fn begin<'a>(
        &'a self,
        incident_id: u64,
        receiver: &'a str,
        event: Event,
    ) -> BoxFuture<'a, Result<i64, DeliveryLogError>> {
        Box::pin(async move {
            let id = {
                let mut guard = self.lock();
                guard.0 += 1;
                let id = guard.0;
                let records = &mut guard.1;
                if records.len() >= MEMORY_LOG_CAPACITY {
                    records.remove(0);
                }
                records.push(DeliveryRecord {
                    id,
                    incident_id,
                    receiver: receiver.to_owned(),
                    event,
                    attempts: Vec::new(),
                });
                id
            };
            self.bump();
            Ok(id)
        })
    }

    fn attempt(
        &self,
        delivery_id: i64,
        attempt: DeliveryAttempt,
    ) -> BoxFuture<'_, Result<(), DeliveryLogError>> {
        Box::pin(async move {
            {
                let mut guard = self.lock();
                let Some(record) = guard.1.iter_mut().find(|r| r.id == delivery_id) else {
                    return Err(DeliveryLogError::from(
                        Box::<dyn StdError + Send + Sync>::from(format!(
                            "no delivery with id {delivery_id}"
                        )),
                    ));
                };
                record.attempts.push(attempt);
            }
            self.bump();
            Ok(())
        })
    }
}
