//! The Varnish source: what a running Varnish says about its backends and
//! its failed fetches, for a host whose proxy-config source listed Varnish.
//!
//! - `varnishadm backend.list -j`: each backend's health (`healthy`/`sick`,
//!   the probe window), into the Varnish `ProxyConfig.runtime`.
//! - `varnishlog -d -g request -q FetchError`: a dump of the shared-memory
//!   log ring, of which only the failed fetches newer than the last report
//!   count (the first report takes the last [`VarnishSettings::first_window`]);
//!   each becomes a `LogSignal` of proxy `varnish` in the proxy-log section,
//!   keyed by the backend's address from the VCL, so the collector judges it
//!   like any proxy's error line.
//!
//! - `varnishstat -1 -j -f …`: a few counters, read first on every report;
//!   the two commands above run only when they moved ([`gate`]): the log
//!   dump's cost grows with the ring's fill, the counters' does not.
//!
//! The commands run with argv (never a shell string), a timeout and bounded
//! output, with the admin address and secret (`-T`, `-S`) or the instance
//! (`-n`) that the unit's `ExecStart` gives varnishd. They attach to its shared
//! memory without waiting for it: while varnishd is stopped, `varnishstat`
//! fails at once and only an admin port the unit names is still asked (refused
//! at once), where waiting held the host's every report back by seconds, just
//! when its evidence was wanted. Under the shipped unit
//! the agent's own user reads Debian's root-only `/etc/varnish/secret` and the
//! `vcache:varnish 0640` VSM files through `CAP_DAC_READ_SEARCH`, which it
//! already keeps. A part that cannot be read is reported with its reason
//! (`runtime.unavailable`, `runtime.log_unavailable`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use gw502_proto::v1::{
    BackendHealth, LogSignal, ProxyConfig, ProxyConfigSection, ProxyLogSection, ProxyRuntime,
};
use gw502_proxy::varnish::{self, Invocation, VarnishCounters, admin};
use gw502_proxy::{Proxy, ProxyKind};
use gw502_vocab::Cause;

use crate::proxy_config::command::run_bounded;
use crate::proxy_config::unit_files;
use crate::proxy_log::signals::Signals;
use crate::report::Section;
use crate::source::{Scope, Source, Unavailable};

pub mod gate;

use gate::{Gate, GateSettings};

/// The records of a request group the agent reads (`varnishlog -i`).
const RECORDS: &str =
    "Begin,Timestamp,ReqHeader,RespStatus,BereqURL,BereqHeader,BackendOpen,FetchError,BerespStatus";
/// The most signal keys (backend, cause) per report.
const MAX_SIGNALS: usize = 64;
/// `varnishstat` and `varnishlog` attach to varnishd's shared memory once, without
/// the retries `-t` asks for (5 s by default, 2 s here before).
const NO_WAIT: [&str; 2] = ["-t", "0"];

/// Where the Varnish tools are and how long they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarnishSettings {
    /// `varnishadm` (found on PATH when bare).
    pub varnishadm: PathBuf,
    /// `varnishlog`.
    pub varnishlog: PathBuf,
    /// `varnishstat`.
    pub varnishstat: PathBuf,
    /// Bound on each command.
    pub timeout: Duration,
    /// How far back the first report looks in the log ring.
    pub first_window: Duration,
    /// How long the log and backend reads may be skipped while the counters stand still.
    pub gate: GateSettings,
}

impl Default for VarnishSettings {
    fn default() -> Self {
        Self {
            varnishadm: PathBuf::from("varnishadm"),
            varnishlog: PathBuf::from("varnishlog"),
            varnishstat: PathBuf::from("varnishstat"),
            timeout: Duration::from_secs(10),
            first_window: Duration::from_secs(300),
            gate: GateSettings::default(),
        }
    }
}

/// What one run read, to be merged into the report ([`VarnishReading::apply`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VarnishReading {
    /// The run-time view of the Varnish proxy; `None` when no Varnish is listed.
    pub runtime: Option<ProxyRuntime>,
    /// Failed fetches since the last report.
    pub signals: Vec<LogSignal>,
}

impl Section for VarnishReading {
    fn unavailable(reason: String) -> Self {
        Self {
            runtime: Some(ProxyRuntime {
                unavailable: reason.clone(),
                log_unavailable: reason,
                ..ProxyRuntime::default()
            }),
            signals: Vec::new(),
        }
    }
}

impl VarnishReading {
    /// Puts the reading into the report's sections: the runtime on the
    /// Varnish proxy config, the signals into the proxy log.
    pub fn apply(self, config: &mut ProxyConfigSection, log: &mut ProxyLogSection) {
        let Some(runtime) = self.runtime else {
            return;
        };
        if let Some(p) = config
            .proxies
            .iter_mut()
            .find(|p| p.kind == ProxyKind::Varnish.as_str())
        {
            p.runtime = Some(runtime);
        }
        log.signals.extend(self.signals);
    }
}

/// The Varnish source; remembers the newest failed fetch it reported, each
/// backend's last connect error and what it read last ([`Gate`]).
#[derive(Debug, Default)]
pub struct VarnishSource {
    settings: VarnishSettings,
    reported_until_ms: Option<i64>,
    last_connect: BTreeMap<String, &'static [Cause]>,
    gate: Gate,
}

impl VarnishSource {
    /// A source using `settings`.
    pub fn new(settings: VarnishSettings) -> Self {
        Self {
            gate: Gate::new(settings.gate),
            settings,
            ..Self::default()
        }
    }

    /// The counters that gate the other reads: `Ok(None)` when `varnishstat` did not
    /// run or printed what is not understood (then everything is read), `Err` with
    /// its reason when it could not attach to varnishd's shared memory (a stopped
    /// varnishd: the log, read from the same memory, cannot be read either).
    async fn counters(&self, inv: &Invocation) -> Result<Option<VarnishCounters>, String> {
        let mut args = instance_args(inv);
        args.extend(NO_WAIT.into_iter().chain(["-1", "-j"]).map(OsString::from));
        for field in varnish::stat::FIELDS {
            args.extend(["-f".into(), field.into()]);
        }
        let out = match run_bounded(&self.settings.varnishstat, &args, self.settings.timeout).await
        {
            Ok(out) => out,
            Err(error) => {
                tracing::debug!(%error, "varnishstat did not run");
                return Ok(None);
            }
        };
        if !out.success {
            return Err(failure("varnishstat", &out.stdout, &out.stderr));
        }
        Ok(varnish::parse_counters_json(&String::from_utf8_lossy(
            &out.stdout,
        )))
    }

    /// `varnishadm` argv before the command: the admin address and secret
    /// when the unit gives both, else the instance directory.
    fn admin_args(inv: &Invocation) -> Vec<OsString> {
        match (&inv.admin, &inv.secret) {
            (Some(t), Some(s)) => vec!["-T".into(), t.into(), "-S".into(), s.into()],
            _ => instance_args(inv),
        }
    }

    async fn backends(&self, inv: &Invocation) -> Result<Vec<BackendHealth>, String> {
        let mut args = Self::admin_args(inv);
        args.extend(["-t".into(), "2".into(), "backend.list".into(), "-j".into()]);
        let out = run_bounded(&self.settings.varnishadm, &args, self.settings.timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success {
            return Err(failure("varnishadm", &out.stdout, &out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        admin::parse_backend_list_json(&text)
            .ok_or_else(|| "varnishadm backend.list -j: unexpected output".to_string())
    }

    async fn fetch_errors(
        &mut self,
        inv: &Invocation,
        config: &ProxyConfig,
    ) -> Result<Vec<LogSignal>, String> {
        let mut args = instance_args(inv);
        for a in [
            "-d",
            NO_WAIT[0],
            NO_WAIT[1],
            "-g",
            "request",
            "-q",
            "FetchError",
            "-i",
            RECORDS,
        ] {
            args.push(a.into());
        }
        let out = run_bounded(&self.settings.varnishlog, &args, self.settings.timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success {
            return Err(failure("varnishlog", &out.stdout, &out.stderr));
        }
        let now = gw502_vocab::clock::now_ms();
        let since = self.reported_until_ms.unwrap_or_else(|| {
            now - i64::try_from(self.settings.first_window.as_millis()).unwrap_or(0)
        });
        let failures = varnish::fetch_failures(&String::from_utf8_lossy(&out.stdout));
        let mut signals = Signals::new(MAX_SIGNALS);
        let mut newest = since;
        // After a connect error Varnish holds the backend down for a moment
        // and fails fetches without trying (`fail errno 0 (Success)`): those
        // carry the cause of the error that started the hold-down.
        for f in failures.iter().filter(|f| f.at_ms > since) {
            newest = newest.max(f.at_ms);
            let mut line = f.line();
            match (line.errno, self.last_connect.get(&f.backend)) {
                (Some(0), Some(cause)) => line.cause = cause,
                (Some(n), _) if n != 0 && self.last_connect.len() < MAX_SIGNALS => {
                    self.last_connect.insert(f.backend.clone(), line.cause);
                }
                _ => {}
            }
            line.upstream = Some(upstream_of(config, f));
            let sample = format!("FetchError {}", f.message);
            signals.add(ProxyKind::Varnish.as_str(), "", &line, sample.as_bytes());
        }
        self.reported_until_ms = Some(newest);
        Ok(signals.into_signals())
    }
}

/// Each backend with its address from the VCL (`backend.list` names only).
fn with_addresses(mut list: Vec<BackendHealth>, config: &ProxyConfig) -> Vec<BackendHealth> {
    for b in &mut list {
        let name = admin::backend_name(&b.name);
        if let Some(t) = config.targets.iter().find(|t| t.group == name) {
            b.address.clone_from(&t.address);
        }
    }
    list
}

/// `-n DIR` when the unit names an instance; nothing for the default one.
fn instance_args(inv: &Invocation) -> Vec<OsString> {
    inv.workdir
        .as_ref()
        .map(|n| vec!["-n".into(), n.into()])
        .unwrap_or_default()
}

/// The backend's address as the VCL gives it (`http://127.0.0.1:8080`), so
/// the collector matches the signal with the target; else where it
/// connected, else its name.
fn upstream_of(config: &ProxyConfig, f: &varnish::FetchFailure) -> String {
    match config.targets.iter().find(|t| t.group == f.backend) {
        Some(t) if !t.unix_path.is_empty() => format!("http://unix:{}", t.unix_path),
        Some(t) => format!("http://{}", t.address),
        None if !f.peer.is_empty() => format!("http://{}", f.peer),
        None => f.backend.clone(),
    }
}

/// The first line a failed command printed, for the unavailable reason.
fn failure(tool: &str, stdout: &[u8], stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(if stderr.is_empty() { stdout } else { stderr });
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.chars().all(|c| c == '.'));
    format!("{tool}: {}", line.unwrap_or("failed"))
}

impl Source for VarnishSource {
    type Section = VarnishReading;

    fn name(&self) -> &'static str {
        "varnish"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<VarnishReading, Unavailable> {
        let model = &varnish::Varnish;
        let Some(config) = scope
            .proxies
            .iter()
            .find(|p| p.kind == ProxyKind::Varnish.as_str())
        else {
            return Ok(VarnishReading::default());
        };
        let files = unit_files::read(&scope.roots, model.units()[0]).await;
        let inv = varnish::exec_start(&files)
            .map(|argv| varnish::invocation(&argv))
            .unwrap_or_default();
        let now_ms = gw502_vocab::clock::now_ms();
        let (counters, detached) = match self.counters(&inv).await {
            Ok(counters) => (counters, None),
            Err(reason) => (None, Some(reason)),
        };
        let plan = self.gate.plan(counters.as_ref(), now_ms);
        // Without the shared memory, varnishadm can still reach an admin port the
        // unit names (refused at once when varnishd is down), not an instance.
        let admin_reachable = detached.is_none() || inv.admin.is_some() && inv.secret.is_some();
        let backends = if let (false, Some(reason)) = (admin_reachable, &detached) {
            Err(reason.clone())
        } else if plan.backends {
            let read = self.backends(&inv).await;
            if let Ok(list) = &read {
                self.gate
                    .backends_read(counters.clone(), now_ms, list.clone());
            }
            read
        } else {
            Ok(self.gate.last_backends().unwrap_or_default().to_vec())
        };
        let backends = backends.map(|list| with_addresses(list, config));
        let signals = if let Some(reason) = detached {
            Err(reason)
        } else if plan.log {
            let read = self.fetch_errors(&inv, config).await;
            if read.is_ok() {
                self.gate.log_read(counters, now_ms);
            }
            read
        } else {
            Ok(Vec::new())
        };
        if let (Err(a), Err(l)) = (&backends, &signals) {
            return Err(Unavailable(if a == l {
                a.clone()
            } else {
                format!("{a}; {l}")
            }));
        }
        let mut runtime = ProxyRuntime::default();
        match backends {
            Ok(list) => runtime.backends = list,
            Err(reason) => runtime.unavailable = reason,
        }
        let signals = signals.unwrap_or_else(|reason| {
            runtime.log_unavailable = reason;
            Vec::new()
        });
        Ok(VarnishReading {
            runtime: Some(runtime),
            signals,
        })
    }
}

#[cfg(test)]
mod tests;
