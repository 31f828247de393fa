//! Escalation routing: which receivers hear about an incident, and getting
//! it to them. The `[routing]` config ([`RoutingSettings`]) validates into a
//! [`Router`], whose rules pick receivers for an incident ([`Router::route`]).
//! A [`Dispatcher`] delivers each routed event to a signed JSON webhook or a
//! Prometheus Alertmanager, retrying with capped exponential backoff, and
//! records every delivery and attempt in a [`DeliveryLog`] (the store, or
//! [`MemoryDeliveryLog`] in tests). docs/ROUTING.md is the user's reference.
//!
//! - `settings`, `validate`, `problem`: the raw config, its validation and
//!   the problems it reports.
//! - `rules`: matching and the [`Router`].
//! - `dispatch` and `lane`: per-receiver queues, delivery tasks and
//!   Alertmanager keep-alive.
//! - `retry`: the backoff loop around one delivery.
//! - [`webhook`] and [`alertmanager`]: what goes on the wire.
//! - `log`: the [`DeliveryLog`] trait and its in-memory implementation.

pub mod alertmanager;
mod dispatch;
mod keepalive;
mod lane;
mod log;
mod problem;
mod receiver;
pub(crate) mod retry;
mod rules;
mod settings;
mod validate;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use dispatch::{Dispatcher, DispatcherHandle};
pub use log::{
    DeliveryAttempt, DeliveryLog, DeliveryLogError, DeliveryRecord, DeliveryState, Event,
    MEMORY_LOG_CAPACITY, MemoryDeliveryLog,
};
pub use problem::{ConfigProblem, RoutingConfigError};
pub use receiver::{AlertmanagerReceiver, Receiver, Secret, WebhookReceiver};
pub use retry::RetryPolicy;
pub use rules::{Route, Router};
pub use settings::{MatchSettings, ReceiverSettings, RoutingSettings, RuleSettings};
