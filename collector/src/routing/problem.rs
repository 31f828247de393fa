//! Routing config problems: each one carries the key path it is about, and
//! `Problems` collects them while validation carries on, so the operator
//! sees every problem at once.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

/// One problem in `[routing]`.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct RoutingConfigError {
    /// Where, e.g. `routing.rules[2].receiver` (rules count from 0).
    pub key: String,
    /// What is wrong.
    pub problem: ConfigProblem,
}

/// What is wrong with one routing key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// A rule or the default names a receiver that is not configured.
    #[error("no receiver named {0:?}")]
    UnknownReceiver(String),
    /// The URL does not parse or is not http(s).
    #[error("invalid url {url:?}: {reason}")]
    BadUrl {
        /// The URL as written.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A duration does not parse or is out of range.
    #[error("invalid duration {value:?}: {reason}")]
    BadDuration {
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A number is out of range.
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The value given.
        value: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The secret file cannot be read.
    #[error("cannot read secret file {path}: {source}")]
    SecretUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret environment variable is unset or not UTF-8.
    #[error("environment variable {0} is not set")]
    SecretEnvUnset(String),
    /// The secret is empty, or bigger than 4 KiB.
    #[error("the secret is empty or longer than 4096 bytes")]
    SecretSize,
    /// A webhook names neither or both of `secret_file` and `secret_env`.
    #[error("set exactly one of secret_file and secret_env")]
    SecretSource,
    /// A value that must not be empty is.
    #[error("must not be empty")]
    Empty,
    /// A matcher names (or, as a glob, matches) no word of its vocabulary,
    /// so the rule could never match: usually a typo.
    #[error("{value:?} is no {kind} (one of: {known})")]
    UnknownWord {
        /// Which vocabulary: `cause`, `layer`, `owner` or `emitted_by`.
        kind: &'static str,
        /// The value as written.
        value: String,
        /// The words of that vocabulary, comma-separated.
        known: String,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the http client: {0}")]
    Client(String),
}

/// Collects problems under key paths.
pub(crate) struct Problems(pub(crate) Vec<RoutingConfigError>);

impl Problems {
    pub(crate) fn push(&mut self, key: impl fmt::Display, problem: ConfigProblem) {
        self.0.push(RoutingConfigError {
            key: key.to_string(),
            problem,
        });
    }

    pub(crate) fn duration(
        &mut self,
        key: String,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        match humantime::parse_duration(value) {
            Ok(d) if d.is_zero() => {
                let reason = "must be more than zero".into();
                self.push(
                    key,
                    ConfigProblem::BadDuration {
                        value: value.into(),
                        reason,
                    },
                );
                default
            }
            Ok(d) if d > Duration::from_secs(24 * 3600) => {
                let reason = "must be at most 24h".into();
                self.push(
                    key,
                    ConfigProblem::BadDuration {
                        value: value.into(),
                        reason,
                    },
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                let reason = e.to_string();
                self.push(
                    key,
                    ConfigProblem::BadDuration {
                        value: value.into(),
                        reason,
                    },
                );
                default
            }
        }
    }

    pub(crate) fn range(
        &mut self,
        key: &str,
        value: Option<u64>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(v) if (min..=max).contains(&v) => v,
            Some(v) => {
                self.push(key, ConfigProblem::OutOfRange { value: v, min, max });
                default
            }
        }
    }

    pub(crate) fn url(&mut self, key: String, value: &str) -> Option<Url> {
        let reason = match Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                return Some(u);
            }
            Ok(_) => "only http and https urls with a host are supported".to_owned(),
            Err(e) => e.to_string(),
        };
        self.push(
            key,
            ConfigProblem::BadUrl {
                url: value.into(),
                reason,
            },
        );
        None
    }
}
