//! Simulated agents under steady load: each host sends a testkit report
//! every `interval` over real mTLS gRPC, sticks to one collector and moves
//! to the next when a send fails (as the real agent does), and re-sends the
//! same sequence number until some collector acknowledges it, the way the
//! real agent's spool replays. The test switches each host's app down (a
//! 502 fault: nginx logs refusals, the public view is nginx's 502) and up.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gw502_proto::v1::ingest_client::IngestClient;
use gw502_testkit::{Clock, Host};
use gw502_tests::fleet::Fleet;
use gw502_vocab::clock::now_ms;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::transport::Channel;

const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

/// What a host's app is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Up, the site answers 200.
    Up,
    /// Stopped: the site answers nginx's 502.
    Down,
}

/// One acknowledged report.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The host.
    pub host: String,
    /// Its sequence number.
    pub seq: u64,
    /// The collector had it already (a re-send after a lost answer).
    pub duplicate: bool,
    /// When.
    pub at: Instant,
}

/// The running agents.
pub struct Load {
    stop: watch::Sender<bool>,
    phases: Arc<Mutex<BTreeMap<String, Phase>>>,
    acks: Arc<Mutex<Vec<Ack>>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

/// The host id and site of simulated agent `i`.
pub fn host_site(i: usize) -> (String, String) {
    (format!("sim{i}"), format!("sim{i}.example"))
}

impl Load {
    /// Starts `hosts` agents, agent `i` first trying collector `i % n`.
    pub fn start(
        fleet: Arc<Fleet>,
        collectors: Vec<SocketAddr>,
        hosts: usize,
        interval: Duration,
    ) -> Load {
        Load::start_skewed(fleet, collectors, hosts, interval, &[])
    }

    /// [`Load::start`] with host `i`'s clock `ms` off from its first report,
    /// for each `(i, ms)` of `skews` (every time in its reports is stamped by the skewed clock).
    pub fn start_skewed(
        fleet: Arc<Fleet>,
        collectors: Vec<SocketAddr>,
        hosts: usize,
        interval: Duration,
        skews: &[(usize, i64)],
    ) -> Load {
        let (stop, stopped) = watch::channel(false);
        let phases: Arc<Mutex<BTreeMap<String, Phase>>> = Arc::new(Mutex::new(
            (0..hosts).map(|i| (host_site(i).0, Phase::Up)).collect(),
        ));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let skews = Arc::new(Mutex::new(
            skews
                .iter()
                .map(|&(i, ms)| (host_site(i).0, ms))
                .collect::<BTreeMap<String, i64>>(),
        ));
        let tasks = (0..hosts)
            .map(|i| {
                let agent = Sim {
                    fleet: fleet.clone(),
                    collectors: collectors.clone(),
                    current: i % collectors.len(),
                    clients: vec![None; collectors.len()],
                    host: host_site(i).0,
                    site: host_site(i).1,
                    phases: phases.clone(),
                    skews: skews.clone(),
                    acks: acks.clone(),
                };
                tokio::spawn(agent.run(interval, stopped.clone()))
            })
            .collect();
        Load {
            stop,
            phases,
            acks,
            tasks,
        }
    }

    /// Sets host `i`'s app state for its next reports.
    pub fn set(&self, i: usize, phase: Phase) {
        if let Ok(mut p) = self.phases.lock() {
            p.insert(host_site(i).0, phase);
        }
    }

    /// Every acknowledgement so far.
    pub fn acks(&self) -> Vec<Ack> {
        self.acks.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Stops the agents once their report in flight is acknowledged.
    pub async fn stop(self) -> anyhow::Result<Vec<Ack>> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await??;
        }
        Ok(self.acks.lock().map(|a| a.clone()).unwrap_or_default())
    }
}

struct Sim {
    fleet: Arc<Fleet>,
    collectors: Vec<SocketAddr>,
    current: usize,
    clients: Vec<Option<IngestClient<Channel>>>,
    host: String,
    site: String,
    phases: Arc<Mutex<BTreeMap<String, Phase>>>,
    skews: Arc<Mutex<BTreeMap<String, i64>>>,
    acks: Arc<Mutex<Vec<Ack>>>,
}

impl Sim {
    async fn run(mut self, interval: Duration, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut seq = 0;
        while !*stop.borrow() {
            seq += 1;
            self.deliver(seq).await?;
            tokio::time::sleep(interval).await;
        }
        Ok(())
    }

    fn report(&self, seq: u64) -> gw502_proto::v1::HostReport {
        let phase = self
            .phases
            .lock()
            .ok()
            .and_then(|p| p.get(&self.host).copied())
            .unwrap_or(Phase::Up);
        let skew = self
            .skews
            .lock()
            .ok()
            .and_then(|s| s.get(&self.host).copied())
            .unwrap_or(0);
        // The kit's live clock (a failure one minute old), skewed.
        let now = now_ms() + skew;
        let clock = Clock {
            now,
            t0: now - 60_000,
        };
        let web = |host: &str, site: &str| gw502_testkit::web(host, site, clock);
        let host: Host = match phase {
            Phase::Up => web(&self.host, &self.site)
                .access(200, "200", 100)
                .probe("127.0.0.1:3000", "ok", "response", 200, "")
                .sees("ok", 200, "app"),
            Phase::Down => web(&self.host, &self.site)
                .unit("app.service", "inactive", "dead", "upstream")
                .event("app.service", "stop", 90_000, "Stopped app.service")
                .ngx(
                    "service_down|wrong_port|not_listening",
                    "error",
                    REFUSED_LINE,
                    "http://127.0.0.1:3000/",
                )
                .access(502, "502", 40)
                .probe("127.0.0.1:3000", "refused", "connect", 0, "")
                .sees("ok", 502, "nginx"),
        };
        let mut report = host.report;
        report.agent_instance = format!("{}-i1", self.host);
        report.seq = seq;
        report.generated_at_ms = now;
        report
    }

    /// Sends report `seq` until a collector acknowledges it (bounded: a
    /// report no collector takes for two minutes fails the test).
    async fn deliver(&mut self, seq: u64) -> anyhow::Result<()> {
        let report = self.report(seq);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} report {seq}: no collector took it",
                self.host
            );
            let at = self.current;
            if self.clients[at].is_none() {
                let connect = self.fleet.agent(self.collectors[at], &self.host);
                match tokio::time::timeout(Duration::from_secs(2), connect).await {
                    Ok(Ok(client)) => self.clients[at] = Some(client),
                    _ => {
                        self.fail_over().await;
                        continue;
                    }
                }
            }
            let Some(client) = self.clients[at].as_mut() else {
                continue;
            };
            let sent = tokio::time::timeout(Duration::from_secs(3), client.report(report.clone()));
            match sent.await {
                Ok(Ok(ack)) => {
                    let ack = ack.into_inner();
                    if let Ok(mut acks) = self.acks.lock() {
                        acks.push(Ack {
                            host: self.host.clone(),
                            seq,
                            duplicate: ack.duplicate,
                            at: Instant::now(),
                        });
                    }
                    return Ok(());
                }
                _ => {
                    self.clients[at] = None;
                    self.fail_over().await;
                }
            }
        }
    }

    /// The next collector, after a pause so a fleet with every collector
    /// away is not a busy loop.
    async fn fail_over(&mut self) {
        self.current = (self.current + 1) % self.collectors.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per host, the sequence numbers acknowledged.
pub fn acked(acks: &[Ack]) -> BTreeMap<String, BTreeSet<u64>> {
    let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for a in acks {
        out.entry(a.host.clone()).or_default().insert(a.seq);
    }
    out
}
