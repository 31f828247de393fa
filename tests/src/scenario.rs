//! The lab fleet runner: real systemd hosts (see [`crate::lab`]) each running the real
//! `gw502-agent` as a unit, the real collector on the machine at `10.77.0.1`, and
//! `gw502ctl --json` to read what it concluded.
//!
//! A [`LabFleet`] owns the lab (so dropping it, also on a panic, halts the hosts and
//! removes mounts and the bridge), the PKI, a tokio runtime running the collector, and the
//! operator's credentials. Scenarios boot hosts with [`LabFleet::boot`], inject a fault
//! inside a host, and wait with [`LabFleet::wait_incident`] (a bounded poll of
//! `gw502ctl incidents`) for the attributed incident; [`results`] renders the table of
//! expected and got verdicts.

pub mod agent;
pub mod cases;
pub mod collector;
pub mod demo;
pub mod results;
pub mod shapes;
pub mod traffic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gw502_pki::Role;
use serde_json::Value;

use crate::fleet::Running;
use crate::lab::{Host, HostSpec, Lab, run};

pub use collector::{LabPki, LabSite};

/// Bound on one `gw502ctl` call.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// A lab with a collector and agents: everything a scenario needs.
pub struct LabFleet {
    // Field order is drop order: agents' hosts go before the collector and the PKI.
    lab: Lab,
    collector: Option<Running>,
    runtime: tokio::runtime::Runtime,
    pki: LabPki,
    ctl: PathBuf,
}

impl LabFleet {
    /// Take the lab, create the PKI and start the collector watching `sites`.
    pub fn start(sites: &[LabSite]) -> anyhow::Result<LabFleet> {
        let mut fleet = LabFleet::deferred(sites)?;
        fleet.start_collector(sites)?;
        Ok(fleet)
    }

    /// Take the lab and create the PKI, but start no collector yet (cold starts: agents
    /// and collector start after the fault, see [`LabFleet::start_collector`] and
    /// [`LabFleet::start_agents`]). The collector's address is fixed in advance.
    pub fn deferred(sites: &[LabSite]) -> anyhow::Result<LabFleet> {
        let ctl = agent::workspace_bin("gw502ctl")?;
        agent::workspace_bin("gw502-agent")?;
        let lab = Lab::start()?;
        let pki = LabPki::new()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        collector::write_config(&pki, sites)?;
        Ok(LabFleet {
            lab,
            collector: None,
            runtime,
            pki,
            ctl,
        })
    }

    /// Start the collector watching `sites` on its fixed address.
    pub fn start_collector(&mut self, sites: &[LabSite]) -> anyhow::Result<()> {
        let collector = self.runtime.block_on(collector::start(&self.pki, sites))?;
        self.collector = Some(collector);
        Ok(())
    }

    /// The collector's gRPC address (fixed before it starts).
    pub fn collector_addr(&self) -> SocketAddr {
        collector::ADDR
    }

    /// The collector's config file and database.
    pub fn pki(&self) -> &LabPki {
        &self.pki
    }

    /// Boot `specs` with an agent each, then start the agents.
    pub fn boot(&mut self, specs: Vec<HostSpec>) -> anyhow::Result<()> {
        self.boot_agents(specs, true)
    }

    /// Start the agents of `names` (prepared by [`LabFleet::boot_agents`]).
    pub fn start_agents(&self, names: &[String]) -> anyhow::Result<()> {
        for name in names {
            self.host(name)?.systemctl(&["start", agent::AGENT_UNIT])?;
        }
        Ok(())
    }

    /// Boot `specs` with an agent each; start the agents when `start` is true, else
    /// only install them (user, binary, unit).
    pub fn boot_agents(&mut self, specs: Vec<HostSpec>, start: bool) -> anyhow::Result<()> {
        let addr = self.collector_addr();
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let specs = specs
            .into_iter()
            .map(|s| agent::with_agent(s, &self.pki, addr))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.lab.boot_all(specs)?;
        for name in &names {
            if start {
                agent::install(self.host(name)?)?;
            } else {
                agent::prepare(self.host(name)?)?;
            }
        }
        Ok(())
    }

    /// Boot `specs` as they are, without an agent (a host that installs one itself).
    pub fn boot_bare(&mut self, specs: Vec<HostSpec>) -> anyhow::Result<()> {
        self.lab.boot_all(specs)
    }

    /// The booted host `name`.
    pub fn host(&self, name: &str) -> anyhow::Result<&Host> {
        self.lab
            .host(name)
            .with_context(|| format!("no lab host {name}"))
    }

    /// The lab itself.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The runtime the collector runs on.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The `gw502ctl` command line (binary and connection flags) for this fleet.
    pub fn ctl_command_line(&self, json: bool) -> String {
        let (cert, key) = pki_leaf_paths(&self.pki);
        format!(
            "{} --collector https://{} --ca {} --cert {} --key {}{}",
            self.ctl.display(),
            self.collector_addr(),
            self.pki.ca().display(),
            cert.display(),
            key.display(),
            if json { " --json" } else { "" }
        )
    }

    /// Run `gw502ctl --json args...` as the lab operator and parse its output.
    pub fn ctl(&self, args: &[&str]) -> anyhow::Result<Value> {
        let (cert, key) = self.pki.leaf(Role::Operator, "lab")?;
        let mut command = Command::new(&self.ctl);
        command
            .arg("--collector")
            .arg(format!("https://{}", self.collector_addr()))
            .arg("--ca")
            .arg(self.pki.ca())
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--json")
            .args(args)
            .env_remove("GW502_CONFIG");
        let out = run::output_within(&mut command, CTL_TIMEOUT)?;
        if !out.status.success() {
            bail!(
                "gw502ctl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "gw502ctl {} printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Every incident (`all` includes resolved ones).
    pub fn incidents(&self, all: bool) -> anyhow::Result<Vec<Value>> {
        let args: &[&str] = if all {
            &["incidents", "--all"]
        } else {
            &["incidents"]
        };
        match self.ctl(args)? {
            Value::Array(items) => Ok(items),
            other => bail!("gw502ctl incidents printed {other}"),
        }
    }

    /// Poll `gw502ctl incidents --all` until one matches `accept`, or `deadline` passes;
    /// the last listing comes back either way.
    pub fn wait_incident(
        &self,
        deadline: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<(Option<Value>, Vec<Value>)> {
        let end = Instant::now() + deadline;
        loop {
            let listing = self.incidents(true)?;
            if let Some(found) = listing.iter().find(|i| accept(i)) {
                return Ok((Some(found.clone()), listing));
            }
            if Instant::now() >= end {
                return Ok((None, listing));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Poll until the collector has at least `reports` reports from `host`.
    pub fn wait_reports(&self, host: &str, reports: u64, deadline: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + deadline;
        loop {
            let hosts = self.ctl(&["hosts"])?;
            let count = hosts
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| h["host"] == host)
                .and_then(|h| h["reports"].as_u64())
                .unwrap_or(0);
            if count >= reports {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!(
                    "host {host} sent {count} reports in {deadline:?}, wanted {reports}; agent journal:\n{}",
                    self.host(host)
                        .map(|h| h.journal(agent::AGENT_UNIT))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What the collector holds about `host` (`gw502ctl hosts show`), for failure reports.
    pub fn host_detail(&self, host: &str) -> String {
        match self.ctl(&["hosts", "show", host]) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(error) => format!("{error:#}"),
        }
    }
}

fn pki_leaf_paths(pki: &LabPki) -> (PathBuf, PathBuf) {
    gw502_pki::leaf_paths(&pki.dir(), Role::Operator, "lab")
}

impl Drop for LabFleet {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            let _ = self.runtime.block_on(collector.stop());
        }
    }
}
