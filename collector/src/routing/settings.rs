//! The `[routing]` section of the collector config as written: plain serde
//! structs with `deny_unknown_fields`. [`RoutingSettings::validate`] (in
//! `validate`) turns them into a [`super::Router`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// `[routing]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// `[[routing.rules]]`, checked in order.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
    /// `[routing.receivers.<name>]`.
    #[serde(default)]
    pub receivers: BTreeMap<String, ReceiverSettings>,
    /// The receiver for incidents no rule matches.
    pub default_receiver: Option<String>,
    /// Tries per delivery (default 5).
    pub max_attempts: Option<u32>,
    /// The first retry delay, doubled each retry, with jitter (default `1s`).
    pub backoff: Option<String>,
    /// The cap of the retry delay (default `5m`).
    pub max_backoff: Option<String>,
    /// Deliveries waiting per receiver before new ones are dropped (default 1024).
    pub queue_capacity: Option<usize>,
    /// Deliveries in flight per receiver (default 8).
    pub max_concurrent: Option<usize>,
}

/// One `[[routing.rules]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// The conditions; all must hold.
    #[serde(rename = "match", default)]
    pub matcher: MatchSettings,
    /// The receiver's name.
    pub receiver: String,
    /// The owner to report instead of the verdict's.
    pub owner: Option<String>,
    /// Keep checking later rules after this one matched.
    #[serde(rename = "continue", default)]
    pub continue_matching: bool,
}

/// The `match` table of a rule; each value is exact or a `*` glob.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSettings {
    /// The verdict's owner (before any override).
    pub owner: Option<String>,
    /// The verdict's layer.
    pub layer: Option<String>,
    /// The verdict's cause.
    pub cause: Option<String>,
    /// The hop that produced the status.
    pub emitted_by: Option<String>,
    /// The site name.
    pub site: Option<String>,
    /// The host the incident is on.
    pub host: Option<String>,
    /// Site labels that must all be present with matching values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One `[routing.receivers.<name>]` entry as written, told apart by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ReceiverSettings {
    /// `kind = "webhook"`.
    Webhook {
        /// Where to POST (http or https).
        url: String,
        /// A file holding the HMAC secret (trailing whitespace is trimmed).
        secret_file: Option<PathBuf>,
        /// An environment variable holding the HMAC secret.
        secret_env: Option<String>,
        /// The limit for one request (default `5s`).
        timeout: Option<String>,
    },
    /// `kind = "alertmanager"`.
    Alertmanager {
        /// The Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
        url: String,
        /// How often firing alerts are re-sent (default `1m`).
        resend_interval: Option<String>,
        /// The limit for one request (default `5s`).
        timeout: Option<String>,
        /// A link for `generatorURL`; `{id}` becomes the incident id.
        generator_url: Option<String>,
    },
}
