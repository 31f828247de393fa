//! [`ProbeSource`]: probes every distinct upstream target the proxy configs
//! name, with bounded concurrency, and fills the report's `ProbesSection`.
//!
//! A report waits for its probes only up to a budget. A probe still running
//! then (an upstream that accepts and never answers holds it for the whole
//! timeout) goes on and goes into a later report; meanwhile the target keeps
//! its newest finished probe, stamped when that probe started, and no second
//! probe of it is started. A target whose newest probe outlived the budget is
//! not waited for at all: its next probe most likely will too. So a hanging
//! upstream never holds back the rest of the host's evidence, and is not sent
//! a new request while the last one waits.
//! A late probe that finishes with news (its target's outcome changed) brings
//! the next report forward ([`ProbeSource::late_news`]), so its evidence does
//! not wait for the next tick.
//!
//! Between two reports the targets of the last one are probed once more
//! ([`ProbeSource::start_probes`], halfway through the interval). A probe is one
//! small request to a local upstream, a report is the host's whole picture: so
//! a fault that only a probe sees (a hang, which takes a whole probe timeout to
//! see) is found up to half an interval sooner, and what it finds brings the
//! report forward as any late news does.
//!
//! Each target is probed the way its proxy reaches it: the protocol of the
//! directive (`proxy_pass http://`, `fastcgi_pass`, ...), the Host header of
//! the first server name that routes to it, and the location's path when it
//! is a plain prefix. An https target is verified only where its proxy
//! verifies it, against the CA file the proxy trusts and the name it checks;
//! when that CA file is unusable the certificate is not judged and the
//! probe's detail says why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gw502_proto::v1::{DirectProbe, ProbesSection, UpstreamTarget};
use gw502_vocab::clock::now_ms;
use tokio::sync::Semaphore;
use tokio::task::{Id, JoinError, JoinSet};

use super::trust::{ProxyTrust, proxy_trust};
use crate::source::{Scope, Source, Unavailable};
use gw502_probe::{Endpoint, ProbeRequest, Protocol, TlsPolicy, probe};

/// Bounds and policy of the direct probes.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Probes in flight at once.
    pub concurrency: usize,
    /// How long a report waits for its probes; one still running then goes
    /// into a later report.
    pub budget: Duration,
    /// Time allowed for resolution and connect of one probe.
    pub connect_timeout: Duration,
    /// Time allowed for the handshake and response head of one probe.
    pub response_timeout: Duration,
    /// A response head above this many bytes is `header_too_big`.
    pub max_head: usize,
    /// Certificate policy for `https` targets.
    pub tls: TlsPolicy,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            budget: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            tls: TlsPolicy::default(),
        }
    }
}

impl From<Duration> for ProbeSettings {
    /// Default settings with `timeout` for both the connect and the response.
    fn from(timeout: Duration) -> Self {
        Self {
            connect_timeout: timeout,
            response_timeout: timeout,
            ..Self::default()
        }
    }
}

/// A target as probes tell it apart: (protocol, address).
type Key = (String, String);

/// The direct-probe evidence source.
#[derive(Debug)]
pub struct ProbeSource {
    settings: ProbeSettings,
    /// Why certificates went unjudged in the last report, to log each once.
    unjudged: HashSet<String>,
    /// Probes still running, at most one per target (dropped with the source).
    running: JoinSet<DirectProbe>,
    /// The target of each running probe.
    in_flight: HashMap<Id, Key>,
    /// The newest finished probe of each target.
    latest: BTreeMap<Key, DirectProbe>,
    /// The probes the last report called for, to probe again between reports.
    last_plan: Vec<Planned>,
    /// Bounds the probes in flight at once.
    permits: Arc<Semaphore>,
}

impl Default for ProbeSource {
    fn default() -> Self {
        Self::new(ProbeSettings::default())
    }
}

/// One planned probe and the note its detail carries.
#[derive(Debug, Clone)]
struct Planned {
    target: UpstreamTarget,
    request: ProbeRequest,
    note: Option<String>,
}

impl ProbeSource {
    /// A source with the given settings (or a per-probe timeout).
    pub fn new(settings: impl Into<ProbeSettings>) -> Self {
        let settings = settings.into();
        Self {
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
            unjudged: HashSet::new(),
            running: JoinSet::new(),
            in_flight: HashMap::new(),
            latest: BTreeMap::new(),
            last_plan: Vec::new(),
        }
    }

    /// The probes this scope calls for: one per distinct (protocol, address).
    pub fn plan(&self, scope: &Scope) -> Vec<(UpstreamTarget, ProbeRequest)> {
        self.planned(scope)
            .into_iter()
            .map(|p| (p.target, p.request))
            .collect()
    }

    fn planned(&self, scope: &Scope) -> Vec<Planned> {
        let mut seen = HashSet::new();
        let mut planned = Vec::new();
        for target in scope.proxies.iter().flat_map(|p| p.targets.iter()) {
            if !seen.insert(key(target)) {
                continue;
            }
            if let Some((request, note)) = self.request_for(scope, target) {
                planned.push(Planned {
                    target: target.clone(),
                    request,
                    note,
                });
            }
        }
        planned
    }

    /// The request for `target`, and a note when its certificate cannot be judged.
    fn request_for(
        &self,
        scope: &Scope,
        target: &UpstreamTarget,
    ) -> Option<(ProbeRequest, Option<String>)> {
        let protocol = Protocol::from_word(&target.protocol);
        let endpoint = if !target.unix_path.is_empty() {
            Endpoint::Unix(scope.roots.host_path(Path::new(&target.unix_path)))
        } else if !target.host.is_empty() {
            let host = target
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = match (target.port, target.protocol.as_str()) {
                (0, "https" | "grpcs") => 443,
                (0, _) => 80,
                (p, _) => u16::try_from(p).ok()?,
            };
            Endpoint::Tcp { host, port }
        } else {
            return None;
        };
        let mut request = ProbeRequest::new(endpoint, protocol);
        request.host_header = host_header(target);
        request.path = probe_path(&target.location);
        if !target.fastcgi_script.is_empty() {
            request.script_filename = Some(target.fastcgi_script.clone());
        }
        if !target.host.is_empty() {
            request.tls_name = Some(
                target
                    .host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            );
        }
        request.connect_timeout = self.settings.connect_timeout;
        request.response_timeout = self.settings.response_timeout;
        request.max_head = self.settings.max_head;
        request.tls = self.settings.tls.clone();
        // A certificate problem fails the handoff only where the proxy verifies.
        request.tls.verify &= target.tls_verify;
        let mut note = None;
        if request.tls.verify {
            if !target.tls_server_name.is_empty() {
                request.tls_name = Some(target.tls_server_name.clone());
            }
            match proxy_trust(&scope.roots, &target.tls_ca_file) {
                ProxyTrust::Default => {}
                ProxyTrust::Roots(certs) => request.tls.extra_roots.extend(certs),
                ProxyTrust::Unknown(why) => {
                    // Judging without the proxy's CA would fail a certificate the proxy accepts.
                    request.tls.verify = false;
                    note = Some(format!("certificate not judged: {why}"));
                }
            }
        }
        Some((request, note))
    }
}

/// The Host header for a target: its first concrete server name, else its host.
pub fn host_header(target: &UpstreamTarget) -> String {
    target
        .server_names
        .iter()
        .find(|n| !n.is_empty() && *n != "_" && !n.starts_with('~') && !n.contains('*'))
        .cloned()
        .or_else(|| (!target.host.is_empty()).then(|| target.host.clone()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The path to request: the location when it is a plain prefix, else `/`.
pub fn probe_path(location: &str) -> String {
    let plain = location.starts_with('/')
        && !location
            .chars()
            .any(|c| c.is_whitespace() || "~*^$()[]{}|\\?+".contains(c));
    if plain {
        location.to_string()
    } else {
        "/".to_string()
    }
}

impl Source for ProbeSource {
    type Section = ProbesSection;

    fn name(&self) -> &'static str {
        "probes"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ProbesSection, Unavailable> {
        let planned = self.planned(scope);
        let notes: HashSet<String> = planned.iter().filter_map(|p| p.note.clone()).collect();
        for note in notes.difference(&self.unjudged) {
            tracing::warn!(
                reason = %note,
                "upstream ca file unusable, probing without certificate verification"
            );
        }
        self.unjudged = notes;
        let wanted: HashSet<Key> = planned.iter().map(|p| key(&p.target)).collect();
        self.last_plan = planned;
        self.start_probes();
        let budget = tokio::time::Instant::now() + self.settings.budget;
        while self.worth_waiting() {
            match tokio::time::timeout_at(budget, self.running.join_next_with_id()).await {
                Ok(Some(done)) => {
                    self.settle(done);
                }
                _ => break,
            }
        }
        if !self.in_flight.is_empty() {
            tracing::debug!(
                running = self.in_flight.len(),
                "probes outlived the report's budget; they go into a later report"
            );
        }
        self.latest.retain(|target, _| wanted.contains(target));
        Ok(ProbesSection {
            unavailable: String::new(),
            probes: self.latest.values().cloned().collect(),
        })
    }
}

impl ProbeSource {
    /// Starts a probe of each target the last report called for that has no
    /// probe running. Results that come after the report wait for the next
    /// one, or bring it forward when they are news ([`ProbeSource::late_news`]).
    pub fn start_probes(&mut self) {
        for planned in &self.last_plan {
            let target = key(&planned.target);
            if !self.in_flight.values().any(|k| *k == target) {
                let handle = self
                    .running
                    .spawn(run(planned.clone(), self.permits.clone()));
                self.in_flight.insert(handle.id(), target);
            }
        }
    }

    /// Waits, between reports, for a probe that outlived its report's budget to
    /// finish with news: an outcome or status its target's newest probe did not
    /// have (a hanging upstream's timeout, say). Every probe that finishes is kept
    /// for the next report either way. While no probe runs it never returns.
    /// Cancel-safe: a probe finished is kept even if the wait is dropped after.
    pub async fn late_news(&mut self) {
        while let Some(done) = self.running.join_next_with_id().await {
            if self.settle(done) {
                return;
            }
        }
        std::future::pending().await
    }

    /// Whether a report waits for the probes still running: not for a target
    /// whose newest probe outlived a report's budget (an upstream that hangs), as
    /// this one most likely will too. The report goes without it; if the target
    /// answers after all, that is news and brings a report forward.
    fn worth_waiting(&self) -> bool {
        let budget_ms = self.settings.budget.as_millis();
        self.in_flight.values().any(|target| {
            self.latest
                .get(target)
                .is_none_or(|p| u128::from(p.elapsed_ms) < budget_ms)
        })
    }

    /// Keeps a finished probe as its target's newest; true when it is news.
    fn settle(&mut self, done: Result<(Id, DirectProbe), JoinError>) -> bool {
        let (id, probe) = match done {
            Ok(done) => done,
            Err(error) => {
                tracing::warn!(%error, "a direct probe ended without a result");
                self.in_flight.remove(&error.id());
                return false;
            }
        };
        let Some(target) = self.in_flight.remove(&id) else {
            return false;
        };
        let news = self.latest.get(&target).is_none_or(|old| {
            (old.outcome.as_str(), old.status) != (probe.outcome.as_str(), probe.status)
        });
        self.latest.insert(target, probe);
        news
    }
}

/// The key probes tell `target` apart by.
fn key(target: &UpstreamTarget) -> Key {
    (target.protocol.clone(), target.address.clone())
}

/// Probes one planned target once a permit is free, stamped when it starts.
async fn run(planned: Planned, permits: Arc<Semaphore>) -> DirectProbe {
    let Planned {
        target,
        request,
        note,
    } = planned;
    // The semaphore is never closed; without a permit the probe still runs.
    let _permit = permits.acquire_owned().await.ok();
    let at_ms = now_ms();
    let mut result = probe(&request).await;
    if let Some(note) = note {
        result.detail = if result.detail.is_empty() {
            note
        } else {
            format!("{}; {note}", result.detail)
        };
    }
    DirectProbe {
        target: Some(target),
        at_ms,
        outcome: result.outcome.as_str().to_string(),
        phase: result
            .phase
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        status: u32::from(result.status),
        header_bytes: result.header_bytes,
        detail: result.detail,
        elapsed_ms: result.elapsed_ms,
        peer: result.peer,
    }
}
