//! A real `gw502-agent` process for the fault tests: its own certificate,
//! a config naming the collectors (or relays in front of them), a state
//! directory the test chooses (so it can sit on a small tmpfs), a one
//! second interval, Prometheus metrics on a loopback port the test
//! scrapes, and its stderr in a file. [`reporting`] and [`drained_once`]
//! frame a fault: the agent reported before it, and after it every report
//! it made is stored exactly once and its spool is empty.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use gw502_pki::Role;
use gw502_tests::fleet::Fleet;
use gw502_tests::scenario::agent::workspace_bin;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pg::free_port;
use super::until;

/// A running agent.
pub struct RealAgent {
    /// Its stderr.
    pub log: PathBuf,
    metrics: SocketAddr,
    child: Option<Child>,
}

impl RealAgent {
    /// Starts agent `host` reporting to `collectors` with its state in
    /// `state`.
    pub fn start(
        fleet: &Fleet,
        host: &str,
        collectors: &[SocketAddr],
        state: &Path,
    ) -> anyhow::Result<RealAgent> {
        let (cert, key) = fleet.issue(Role::Agent, host)?;
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let list: Vec<String> = collectors
            .iter()
            .map(|a| format!("\"https://{a}\""))
            .collect();
        let config = fleet.path().join(format!("{host}.toml"));
        std::fs::write(
            &config,
            format!(
                "host_id = \"{host}\"\ncollectors = [{}]\ninterval = \"1s\"\n\
                 state_dir = \"{}\"\nshutdown_grace = \"5s\"\nmetrics_listen = \"{metrics}\"\n\
                 [tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
                list.join(", "),
                state.display(),
                fleet.pki().join("ca.crt").display(),
                cert.display(),
                key.display()
            ),
        )?;
        let log = fleet.path().join(format!("{host}.log"));
        let child = Command::new(workspace_bin("gw502-agent")?)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("GW502_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        Ok(RealAgent {
            log,
            metrics,
            child: Some(child),
        })
    }

    /// The sum of every series of metric `name` (0 when not exported yet).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: agent\r\n\r\n")
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        let mut sum = 0.0;
        for line in body.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                continue;
            }
            if let Some(value) = rest.rsplit(' ').next() {
                sum += value.parse::<f64>().unwrap_or(0.0);
            }
        }
        Ok(sum)
    }

    /// Waits until the metrics endpoint answers.
    pub async fn ready(&self) -> anyhow::Result<()> {
        until("the agent serves metrics", async || {
            Ok(self.metric("gw502_agent").await.is_ok().then_some(()))
        })
        .await
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        super::procs::log_text(&self.log)
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        super::procs::log_lines(&self.log, needle)
    }

    /// SIGTERM, and the exit status.
    pub async fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("agent not running"))?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        let status = until("the agent exits", async || Ok(child.try_wait()?)).await?;
        self.child = None;
        Ok(status)
    }
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Per `(agent instance, seq)` of `host`'s reports in the store, how often
/// it is there, and the largest `spool_dropped` a stored report carried.
pub async fn stored_seqs(
    db: &mut sqlx::AnyConnection,
    host: &str,
) -> anyhow::Result<(std::collections::BTreeMap<(String, i64), usize>, i64)> {
    use sqlx::Row;
    let rows =
        sqlx::query("SELECT agent_instance, seq, spool_dropped FROM reports WHERE host_id = $1")
            .bind(host)
            .fetch_all(db)
            .await?;
    let mut seqs = std::collections::BTreeMap::new();
    let mut dropped = 0;
    for r in &rows {
        let key = (
            r.try_get::<String, _>("agent_instance")?,
            r.try_get::<i64, _>("seq")?,
        );
        *seqs.entry(key).or_default() += 1;
        dropped = dropped.max(r.try_get::<i64, _>("spool_dropped")?);
    }
    Ok((seqs, dropped))
}

/// The reports missing from `seqs`: per agent instance, every seq from 1
/// to the largest stored that is not there.
pub fn missing(seqs: &std::collections::BTreeMap<(String, i64), usize>) -> usize {
    let mut last = std::collections::BTreeMap::<&str, i64>::new();
    for (instance, seq) in seqs.keys() {
        let max = last.entry(instance.as_str()).or_default();
        *max = (*max).max(*seq);
    }
    last.iter()
        .map(|(instance, max)| {
            (1..=*max)
                .filter(|s| !seqs.contains_key(&(instance.to_string(), *s)))
                .count()
        })
        .sum()
}

/// What one real agent made during a fault test and what the store holds
/// of it.
#[derive(Debug)]
pub struct Outcome {
    /// Reports made: the last seq of every agent run (seqs start at 1).
    pub made: i64,
    /// Distinct reports stored.
    pub stored: usize,
    /// Agent runs (instances) seen in the store.
    pub runs: usize,
    /// Times the agent switched collector.
    pub switches: f64,
    /// Send rounds in which no collector took a report.
    pub send_errors: f64,
}

/// Send rounds of `agent` in which no collector took a report.
pub async fn send_errors(agent: &RealAgent) -> anyhow::Result<f64> {
    agent.metric("gw502_agent_send_errors_total").await
}

/// Waits until `agent` met the fault: a send round failed after `before`
/// had failed. Holds a fault on until the real agent tried during it.
pub async fn refused(agent: &RealAgent, before: f64) -> anyhow::Result<f64> {
    until("the real agent meets the fault", async || {
        let now = send_errors(agent).await?;
        Ok((now > before).then_some(now))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", agent.log_text()))
}

/// How many of `host`'s reports are stored; waits until there is one, so a
/// fault starts with the agent reporting.
pub async fn reporting(
    agent: &RealAgent,
    db: &mut sqlx::AnyConnection,
    host: &str,
) -> anyhow::Result<usize> {
    until("the real agent's reports are stored", async || {
        let n = stored_seqs(db, host).await?.0.len();
        Ok((n >= 1).then_some(n))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", agent.log_text()))
}

/// After a fault: waits until more than `before` of the agent's reports are
/// stored and its spool (disk and memory) is empty, stops it (exit 0,
/// nothing waiting), and checks that every report it made, from seq 1 to
/// the last of every run, is stored exactly once and none was counted lost.
pub async fn drained_once(
    agent: &mut RealAgent,
    db: &mut sqlx::AnyConnection,
    host: &str,
    before: usize,
) -> anyhow::Result<Outcome> {
    until("the real agent reports after the fault", async || {
        let n = stored_seqs(db, host).await?.0.len();
        Ok((n > before).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", agent.log_text()))?;
    until("the real agent's spool drains", async || {
        let disk = agent.metric("gw502_agent_spool_reports").await?;
        let memory = agent.metric("gw502_agent_spool_overflow_reports").await?;
        Ok((disk == 0.0 && memory == 0.0).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", agent.log_text()))?;
    let switches = agent.metric("gw502_agent_collector_switches_total").await?;
    let send_errors = send_errors(agent).await?;
    let dropped = agent.metric("gw502_agent_spool_dropped_total").await?;
    let status = agent.stop().await?;
    let text = agent.log_text();
    anyhow::ensure!(status.success(), "the agent exits 0, got {status}: {text}");
    let stopped = agent.log_lines("agent stopped");
    anyhow::ensure!(
        stopped.last().is_some_and(|l| l.contains("waiting=0")),
        "nothing waits in the spool at the stop: {stopped:?}"
    );
    anyhow::ensure!(
        dropped == 0.0,
        "the agent dropped {dropped} reports: {text}"
    );
    let (seqs, carried) = stored_seqs(db, host).await?;
    let twice: Vec<_> = seqs.iter().filter(|(_, c)| **c > 1).collect();
    anyhow::ensure!(twice.is_empty(), "{host} reports stored twice: {twice:?}");
    let missing = missing(&seqs);
    anyhow::ensure!(missing == 0, "{missing} {host} reports missing: {seqs:?}");
    anyhow::ensure!(carried == 0, "the store was told {carried} were lost");
    let mut last = std::collections::BTreeMap::<&str, i64>::new();
    for (instance, seq) in seqs.keys() {
        let max = last.entry(instance.as_str()).or_default();
        *max = (*max).max(*seq);
    }
    Ok(Outcome {
        made: last.values().sum(),
        stored: seqs.len(),
        runs: last.len(),
        switches,
        send_errors,
    })
}

impl Outcome {
    /// Its part of a test's `figures:` line.
    pub fn figures(&self) -> String {
        format!(
            "real_made={} real_stored={} real_runs={} real_switches={} real_send_errors={}",
            self.made, self.stored, self.runs, self.switches, self.send_errors
        )
    }
}
