//! Validation of `[routing]`: checks receiver names, URLs, durations and
//! secrets (reading them here), and builds the [`Router`] or returns every
//! problem with its key path, so the config layer can print them all and
//! exit 64.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gw502_vocab::{Cause, Hop, Layer, Owner};

use super::problem::{ConfigProblem, Problems, RoutingConfigError};
use super::receiver::{AlertmanagerReceiver, Receiver, Secret, WebhookReceiver, alerts_endpoint};
use super::retry::RetryPolicy;
use super::rules::{Glob, Limits, Matcher, Router, Rule};
use super::settings::{ReceiverSettings, RoutingSettings};

/// The biggest secret file read, in bytes.
const MAX_SECRET_BYTES: u64 = 4096;
/// `routing.receivers.<name>`, quoting names that are not bare TOML keys.
fn receiver_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        format!("routing.receivers.{name}")
    } else {
        format!("routing.receivers.{name:?}")
    }
}

fn read_secret_file(path: &Path) -> Result<Vec<u8>, ConfigProblem> {
    let unreadable = |source| ConfigProblem::SecretUnreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    Ok(bytes)
}

/// Every word of one vocabulary, spelled as on the wire.
fn spellings<W: Copy>(all: &[W], as_str: fn(W) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|&w| as_str(w)).collect()
}

/// Pushes a problem when `value` (exact, or a `*` glob) matches none of
/// `known`: a rule with `cause = "servce_down"` would never match.
fn check_word(
    p: &mut Problems,
    key: &str,
    value: Option<&str>,
    kind: &'static str,
    known: &[&'static str],
) {
    let Some(value) = value else { return };
    let glob = Glob(value.to_string());
    if !known.iter().any(|word| glob.matches(word)) {
        let problem = ConfigProblem::UnknownWord {
            kind,
            value: value.to_string(),
            known: known.join(", "),
        };
        p.push(key, problem);
    }
}

impl RoutingSettings {
    /// Checks everything (receiver names, URLs, durations, secrets, which
    /// are read here) and builds the [`Router`], or returns every problem.
    pub fn validate(self) -> Result<Router, Vec<RoutingConfigError>> {
        let mut p = Problems(Vec::new());
        let mut receivers = BTreeMap::new();
        for (name, settings) in &self.receivers {
            let key = receiver_key(name);
            if name.is_empty() {
                p.push(&key, ConfigProblem::Empty);
            }
            if let Some(r) = validate_receiver(&mut p, &key, settings) {
                receivers.insert(name.clone(), Arc::new(r));
            }
        }
        let known = |name: &str| self.receivers.contains_key(name);
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let key = format!("routing.rules[{i}]");
            if !known(&rule.receiver) {
                let problem = ConfigProblem::UnknownReceiver(rule.receiver.clone());
                p.push(format!("{key}.receiver"), problem);
            }
            if rule.owner.as_deref() == Some("") {
                p.push(format!("{key}.owner"), ConfigProblem::Empty);
            }
            let m = &rule.matcher;
            let checks = [
                ("owner", &m.owner, spellings(Owner::ALL, Owner::as_str)),
                ("layer", &m.layer, spellings(Layer::ALL, Layer::as_str)),
                ("cause", &m.cause, spellings(Cause::ALL, Cause::as_str)),
                (
                    "emitted_by",
                    &m.emitted_by,
                    spellings(Hop::ALL, Hop::as_str),
                ),
            ];
            for (field, value, known) in checks {
                let key = format!("{key}.match.{field}");
                check_word(&mut p, &key, value.as_deref(), field, &known);
            }
            let glob = |v: &Option<String>| v.clone().map(Glob);
            rules.push(Rule {
                matcher: Matcher {
                    owner: glob(&m.owner),
                    layer: glob(&m.layer),
                    cause: glob(&m.cause),
                    emitted_by: glob(&m.emitted_by),
                    site: glob(&m.site),
                    host: glob(&m.host),
                    labels: m
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), Glob(v.clone())))
                        .collect(),
                },
                receiver: rule.receiver.clone(),
                owner: rule.owner.clone(),
                continue_matching: rule.continue_matching,
            });
        }
        if let Some(default) = &self.default_receiver
            && !known(default)
        {
            let problem = ConfigProblem::UnknownReceiver(default.clone());
            p.push("routing.default_receiver", problem);
        }
        let max_attempts = p.range(
            "routing.max_attempts",
            self.max_attempts.map(u64::from),
            5,
            1,
            100,
        ) as u32;
        let backoff = p.duration(
            "routing.backoff".into(),
            self.backoff.as_deref(),
            Duration::from_secs(1),
        );
        let max_backoff = p.duration(
            "routing.max_backoff".into(),
            self.max_backoff.as_deref(),
            Duration::from_secs(300),
        );
        let to_u64 = |v: Option<usize>| v.map(|v| v as u64);
        let queue_capacity = p.range(
            "routing.queue_capacity",
            to_u64(self.queue_capacity),
            1024,
            1,
            1 << 20,
        ) as usize;
        let max_concurrent = p.range(
            "routing.max_concurrent",
            to_u64(self.max_concurrent),
            8,
            1,
            1024,
        ) as usize;
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => Some(c),
            Err(e) => {
                p.push("routing", ConfigProblem::Client(e.to_string()));
                None
            }
        };
        match client {
            Some(client) if p.0.is_empty() => Ok(Router {
                rules,
                receivers,
                default_receiver: self.default_receiver,
                retry: RetryPolicy {
                    max_attempts,
                    backoff,
                    max_backoff: max_backoff.max(backoff),
                },
                limits: Limits {
                    queue_capacity,
                    max_concurrent,
                },
                client,
            }),
            _ => Err(p.0),
        }
    }
}

fn validate_receiver(p: &mut Problems, key: &str, settings: &ReceiverSettings) -> Option<Receiver> {
    let default_timeout = Duration::from_secs(5);
    match settings {
        ReceiverSettings::Webhook {
            url,
            secret_file,
            secret_env,
            timeout,
        } => {
            let url = p.url(format!("{key}.url"), url);
            let timeout = p.duration(
                format!("{key}.timeout"),
                timeout.as_deref(),
                default_timeout,
            );
            let secret = match (secret_file, secret_env) {
                (Some(path), None) => {
                    read_secret_file(path).map_err(|e| (format!("{key}.secret_file"), e))
                }
                (None, Some(name)) => match std::env::var(name) {
                    Ok(v) => Ok(v.trim_end().as_bytes().to_vec()),
                    Err(_) => Err((
                        format!("{key}.secret_env"),
                        ConfigProblem::SecretEnvUnset(name.clone()),
                    )),
                },
                _ => Err((key.to_owned(), ConfigProblem::SecretSource)),
            };
            let secret = match secret {
                Ok(s) if s.is_empty() || s.len() as u64 > MAX_SECRET_BYTES => {
                    let which = if secret_file.is_some() {
                        "secret_file"
                    } else {
                        "secret_env"
                    };
                    p.push(format!("{key}.{which}"), ConfigProblem::SecretSize);
                    None
                }
                Ok(s) => Some(Secret::new(s)),
                Err((k, problem)) => {
                    p.push(k, problem);
                    None
                }
            };
            Some(Receiver::Webhook(WebhookReceiver {
                url: url?,
                secret: secret?,
                timeout,
            }))
        }
        ReceiverSettings::Alertmanager {
            url,
            resend_interval,
            timeout,
            generator_url,
        } => {
            let url_key = format!("{key}.url");
            let alerts_url = p.url(url_key.clone(), url).and_then(|u| {
                alerts_endpoint(&u)
                    .map_err(|reason| {
                        p.push(
                            &url_key,
                            ConfigProblem::BadUrl {
                                url: url.clone(),
                                reason,
                            },
                        )
                    })
                    .ok()
            });
            let resend_interval = p.duration(
                format!("{key}.resend_interval"),
                resend_interval.as_deref(),
                Duration::from_secs(60),
            );
            let timeout = p.duration(
                format!("{key}.timeout"),
                timeout.as_deref(),
                default_timeout,
            );
            if let Some(g) = generator_url {
                p.url(format!("{key}.generator_url"), &g.replace("{id}", "0"));
            }
            Some(Receiver::Alertmanager(AlertmanagerReceiver {
                alerts_url: alerts_url?,
                resend_interval,
                timeout,
                generator_url: generator_url.clone(),
            }))
        }
    }
}
