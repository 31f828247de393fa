//! Helpers for producing every TAXONOMY cause through the real collector: a
//! collector with short evaluation and probe intervals, agents that send
//! [`host::Host`] reports over mTLS, an operator that reads incidents, and
//! [`stub::Stub`] HTTP servers the collector's edge prober probes.

pub mod hook;
pub mod host;
pub mod stub;

use std::collections::HashMap;
use std::time::Duration;

use gw502_collector::config::{Config, SiteConfig};
use gw502_collector::edge::{Cidr, EdgeSettings};
use gw502_proto::v1::ingest_client::IngestClient;
use gw502_proto::v1::query_client::QueryClient;
use gw502_proto::v1::{Incident, ListIncidentsRequest};
use gw502_vocab::clock::now_ms;
use tonic::transport::Channel;

use crate::fleet::{Fleet, Running};
use host::Host;

/// How long a test waits for the collector to reach a state.
pub const WAIT: Duration = Duration::from_secs(30);

/// A collector config for cause tests: evaluation every 200 ms, probes
/// every 300 ms, two good observations resolve, loopback probes allowed
/// (and nothing else internal), 1 s probe timeout.
pub fn fast_config(fleet: &Fleet, test: &str, sites: Vec<SiteConfig>) -> anyhow::Result<Config> {
    let db = format!(
        "sqlite://{}",
        fleet.path().join(format!("{test}.db")).display()
    );
    let mut config = fleet.collector_config(&db, test)?;
    config.evaluation_interval = Duration::from_millis(200);
    config.probe_interval = Duration::from_millis(300);
    config.resolve_after = 2;
    config.edge = EdgeSettings {
        timeout: Duration::from_secs(1),
        allow_private: false,
        allow_cidrs: vec![
            "127.0.0.0/8"
                .parse::<Cidr>()
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ],
        ..EdgeSettings::default()
    };
    config.sites = sites;
    Ok(config)
}

/// A configured site.
pub fn site(name: &str, url: &str, hosts: &[&str]) -> SiteConfig {
    SiteConfig {
        name: name.into(),
        url: url.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        labels: Default::default(),
    }
}

/// A running collector with agents and an operator talking to it.
pub struct Harness {
    /// The fleet PKI.
    pub fleet: Fleet,
    /// The collector.
    pub running: Running,
    /// An operator's query client.
    pub operator: QueryClient<Channel>,
    agents: HashMap<String, (IngestClient<Channel>, u64)>,
}

impl Harness {
    /// Starts a collector with `config` made by `configure` from the fleet.
    pub async fn start(
        configure: impl FnOnce(&Fleet) -> anyhow::Result<Config>,
    ) -> anyhow::Result<Self> {
        let fleet = Fleet::new()?;
        let config = configure(&fleet)?;
        let running = Running::start(config, "127.0.0.1:0".parse()?).await?;
        let operator = fleet.operator(running.addr).await?;
        Ok(Self {
            fleet,
            running,
            operator,
            agents: HashMap::new(),
        })
    }

    /// Sends `host`'s report as that host's agent (live, not replayed).
    pub async fn send(&mut self, host: Host) -> anyhow::Result<()> {
        self.send_report(host, false).await
    }

    /// Sends `host`'s report, marked as replayed from the spool when `replayed`.
    pub async fn send_report(&mut self, host: Host, replayed: bool) -> anyhow::Result<()> {
        let id = host.report.host_id.clone();
        if !self.agents.contains_key(&id) {
            let client = self.fleet.agent(self.running.addr, &id).await?;
            self.agents.insert(id.clone(), (client, 0));
        }
        let (client, seq) = self
            .agents
            .get_mut(&id)
            .ok_or_else(|| anyhow::anyhow!("agent {id} just inserted"))?;
        *seq += 1;
        let mut report = host.report;
        report.agent_instance = format!("{id}-i1");
        report.seq = *seq;
        report.generated_at_ms = now_ms();
        report.replayed = replayed;
        let ack = client.report(report).await?.into_inner();
        anyhow::ensure!(!ack.duplicate, "report {seq} of {id} taken as duplicate");
        Ok(())
    }

    /// Every incident (open and resolved) of `site`.
    pub async fn incidents(&mut self, site: &str) -> anyhow::Result<Vec<Incident>> {
        Ok(self
            .operator
            .list_incidents(ListIncidentsRequest {
                all: true,
                site: site.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .incidents)
    }

    /// Open incidents of `site`.
    pub async fn open(&mut self, site: &str) -> anyhow::Result<Vec<Incident>> {
        Ok(self
            .incidents(site)
            .await?
            .into_iter()
            .filter(|i| i.state == "open")
            .collect())
    }
}

/// `(layer, cause, status, emitted_by)` of an incident, for messages.
pub fn words(i: &Incident) -> String {
    i.verdict.as_ref().map_or_else(
        || "no verdict".to_string(),
        |v| {
            format!(
                "{}/{} {} by {} on {:?}",
                v.layer, v.cause, v.status, v.emitted_by, i.host
            )
        },
    )
}
