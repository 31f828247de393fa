//! Several collectors: the agent sticks to one and fails over to the next.
//!
//! The configured addresses (`collectors = [...]`, or the one `collector`)
//! are expanded into [`Target`]s: an IP literal is one target, a name is one
//! target per A/AAAA answer, dialled by address but checked by TLS against
//! the name. [`Collectors::send`] keeps using the current target while it
//! answers. When it is unreachable or answers `UNAVAILABLE` or
//! `RESOURCE_EXHAUSTED` the same report goes to the next target at once; when
//! a whole round failed the error goes back to the report loop, which retries
//! with its backoff, starting with the next target, after resolving the
//! names again. Other refusals are the report's fault and are returned as
//! they are.
//!
//! Sending one report twice (to A, whose answer was lost, then to B) is safe
//! because collectors share one store, which keeps a report once per
//! `(host_id, agent_instance, seq)`. The current collector is the gauge
//! `gw502_agent_collector{collector}` (1 for the current one) and every
//! switch counts in `gw502_agent_collector_switches_total`. A switch is
//! logged as a warning, and the collector that then took the report at
//! `info`; while collectors flap, at most once a minute.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use gw502_proto::v1::{HostReport, ReportAck};
use tokio::time::Instant;
use tonic::Code;

use crate::client::{ClientError, CollectorClient, Credentials};
use crate::config::Tls;
use crate::log_limit::{Failure, LogLimit};

/// Turns a collector's host name into addresses.
pub trait Resolve: Send + Sync {
    /// Every A and AAAA answer for `host`.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo`, so `/etc/hosts` counts).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let answers = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(answers.map(|a| a.ip()).collect())
        })
    }
}

/// One address the agent can dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The address as configured.
    pub configured: String,
    /// The URL dialled: the configured one, or its host replaced by an IP.
    pub dialled: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.configured == self.dialled {
            f.write_str(&self.configured)
        } else {
            write!(f, "{} ({})", self.configured, self.dialled)
        }
    }
}

/// How often a switch of collector is logged while collectors flap.
const SWITCH_LOG_EVERY: Duration = Duration::from_secs(60);

/// The collectors of one agent and the one it currently uses.
pub struct Collectors {
    addresses: Vec<String>,
    credentials: Credentials,
    resolver: Arc<dyn Resolve>,
    targets: Vec<(Target, CollectorClient)>,
    current: usize,
    stale: bool,
    switches: LogLimit,
    announce: bool,
    unresolved: LogLimit,
}

impl Collectors {
    /// Prepares the collectors; nothing is contacted or resolved yet. Every
    /// address must be a usable URL and the TLS files readable.
    pub fn new(
        addresses: &[String],
        transport: &Tls,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Self, ClientError> {
        let credentials = Credentials::load(transport)?;
        for address in addresses {
            CollectorClient::dial(address, None, &credentials)?;
        }
        if addresses.is_empty() {
            return Err(ClientError::Address {
                address: String::new(),
                reason: "no collector configured".into(),
            });
        }
        Ok(Self {
            addresses: addresses.to_vec(),
            credentials,
            resolver,
            targets: Vec::new(),
            current: 0,
            stale: true,
            switches: LogLimit::new(SWITCH_LOG_EVERY),
            announce: false,
            unresolved: LogLimit::new(SWITCH_LOG_EVERY),
        })
    }

    /// The target in use (none before the first send).
    pub fn current(&self) -> Option<&Target> {
        self.targets.get(self.current).map(|(target, _)| target)
    }

    /// Delivers `report` to the current collector, failing over to the next
    /// ones in turn. Fails when every target failed once (the next call
    /// starts with the target after the last one tried), or at once on a
    /// refusal that another collector would repeat.
    pub async fn send(&mut self, report: HostReport) -> Result<ReportAck, ClientError> {
        if self.stale {
            self.refresh().await;
        }
        let mut tried = 0;
        loop {
            let Some((target, client)) = self.targets.get_mut(self.current) else {
                self.stale = true;
                return Err(ClientError::Address {
                    address: self.addresses.join(", "),
                    reason: "no usable collector address".into(),
                });
            };
            match client.send(report.clone()).await {
                Ok(ack) => {
                    if std::mem::take(&mut self.announce) {
                        tracing::info!(collector = %target, "reporting to collector");
                    }
                    return Ok(ack);
                }
                Err(ClientError::Status(status)) if fails_over(status.code()) => {
                    tried += 1;
                    if self.targets.len() > 1 {
                        self.switch(&status);
                    }
                    if tried >= self.targets.len() {
                        self.stale = true;
                        return Err(status.into());
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Moves to the next target after `status` from the current one.
    fn switch(&mut self, status: &tonic::Status) {
        let from = self.targets[self.current].0.to_string();
        metrics::gauge!("gw502_agent_collector", "collector" => from.clone()).set(0.0);
        self.current = (self.current + 1) % self.targets.len();
        let to = self.targets[self.current].0.to_string();
        metrics::gauge!("gw502_agent_collector", "collector" => to.clone()).set(1.0);
        metrics::counter!("gw502_agent_collector_switches_total").increment(1);
        // Never reset by a success, so collectors that flap log one line a
        // minute with the count of switches in between.
        if let Failure::Log { suppressed } = self.switches.failure(Instant::now()) {
            self.announce = true;
            tracing::warn!(
                from,
                to,
                code = ?status.code(),
                message = status.message(),
                suppressed,
                "switching collector"
            );
        }
    }

    /// Resolves every configured address again, keeping the clients (and
    /// their connections) of targets that are still there and staying on the
    /// current target when it still exists.
    async fn refresh(&mut self) {
        let current = self.current().cloned();
        let mut old = std::mem::take(&mut self.targets);
        for address in self.addresses.clone() {
            for (target, server_name) in self.expand(&address).await {
                if self.targets.iter().any(|(t, _)| *t == target) {
                    continue;
                }
                let client = match old.iter().position(|(t, _)| *t == target) {
                    Some(i) => Ok(old.swap_remove(i).1),
                    None => CollectorClient::dial(
                        &target.dialled,
                        server_name.as_deref(),
                        &self.credentials,
                    ),
                };
                match client {
                    Ok(client) => self.targets.push((target, client)),
                    Err(error) => tracing::warn!(%target, %error, "cannot use collector address"),
                }
            }
        }
        if self.targets.is_empty() {
            // Only reachable if every resolved address was unusable: dial
            // the configured ones and let the transport report the failure.
            for address in &self.addresses {
                if let Ok(client) = CollectorClient::dial(address, None, &self.credentials) {
                    let target = Target {
                        configured: address.clone(),
                        dialled: address.clone(),
                    };
                    self.targets.push((target, client));
                }
            }
        }
        self.current = current
            .and_then(|c| self.targets.iter().position(|(t, _)| *t == c))
            .unwrap_or(0);
        if let Some((target, _)) = self.targets.get(self.current) {
            metrics::gauge!("gw502_agent_collector", "collector" => target.to_string()).set(1.0);
        }
        self.stale = false;
    }

    /// The targets of one configured address, each with the name TLS checks.
    async fn expand(&mut self, address: &str) -> Vec<(Target, Option<String>)> {
        let as_is = || {
            vec![(
                Target {
                    configured: address.to_string(),
                    dialled: address.to_string(),
                },
                None,
            )]
        };
        let Ok(url) = url::Url::parse(address) else {
            return as_is();
        };
        let (Some(url::Host::Domain(name)), Some(port)) = (url.host(), url.port_or_known_default())
        else {
            return as_is();
        };
        let name = name.to_string();
        let ips = match self.resolver.resolve(name.clone(), port).await {
            Ok(ips) if !ips.is_empty() => ips,
            answer => {
                if let Failure::Log { suppressed } = self.unresolved.failure(Instant::now()) {
                    let error = answer
                        .err()
                        .map_or("no addresses".to_string(), |e| e.to_string());
                    tracing::warn!(collector = address, %error, suppressed, "cannot resolve collector name");
                }
                return as_is();
            }
        };
        self.unresolved.success();
        let mut targets = Vec::new();
        for ip in ips {
            let mut dialled = url.clone();
            if dialled.set_ip_host(ip).is_err() {
                continue;
            }
            let dialled = dialled.as_str().trim_end_matches('/').to_string();
            targets.push((
                Target {
                    configured: address.to_string(),
                    dialled,
                },
                Some(name.clone()),
            ));
        }
        targets
    }
}

/// Answers that another collector may not give: the collector is down,
/// unreachable, overloaded or too slow (the client's own timeout shows as
/// `CANCELLED`).
pub fn fails_over(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded | Code::Cancelled
    )
}
