//! Agents with several collectors, end to end: two real collectors share one
//! SQLite store over real mTLS on loopback, and a real agent (its spool, its
//! fail-over) reports to them while they stop and return. Every report must
//! land exactly once, in order, whichever collector took it. Waits poll with
//! a deadline; nothing sleeps.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gw502_agent::failover::{Resolve, SystemResolver};
use gw502_agent::run::Agent;
use gw502_collector::store::Store;
use gw502_pki::Role;
use gw502_proto::v1::ingest_server::{Ingest, IngestServer};
use gw502_proto::v1::{HostReport, ListHostsRequest, Nudge, NudgeRequest, ReportAck};
use gw502_tests::fleet::{Fleet, Running, database};
use prost::Message;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// A real agent for `web1` reporting to `collectors` in that order.
fn agent(
    fleet: &Fleet,
    state: &Path,
    collectors: Vec<String>,
    resolver: Arc<dyn Resolve>,
) -> anyhow::Result<Agent> {
    let (cert, key) = fleet.issue(Role::Agent, "web1")?;
    let config = gw502_agent::config::RawConfig {
        host_id: Some("web1".into()),
        collectors: Some(collectors),
        state_dir: Some(state.to_path_buf()),
        tls: gw502_agent::config::RawTls {
            ca: Some(fleet.pki().join("ca.crt")),
            cert: Some(cert),
            key: Some(key),
            plaintext: false,
            crl: None,
        },
        ..Default::default()
    }
    .validate(Path::new("agent"), Default::default())?;
    Ok(Agent::with_resolver(config, resolver)?)
}

/// A SQLite store for two collectors, migrated before either starts: two
/// collectors migrating one fresh SQLite file at once race (PostgreSQL
/// serialises migrations with a lock; SQLite does not).
async fn shared_store(fleet: &Fleet, test: &str) -> anyhow::Result<String> {
    let db = database(fleet.path(), test, false)
        .await?
        .expect("sqlite always");
    Store::connect(&db).await?;
    Ok(db)
}

async fn start(fleet: &Fleet, db: &str, id: &str, at: SocketAddr) -> anyhow::Result<Running> {
    Running::start(fleet.collector_config(db, id)?, at).await
}

/// Drains the agent's spool, retrying until a collector took everything.
async fn drain_within(agent: &mut Agent, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !agent.drain().await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "spool never drained ({} waiting)",
            agent.waiting()
        );
        tokio::task::yield_now().await;
    }
    Ok(())
}

fn current(agent: &Agent) -> String {
    agent
        .collector()
        .map_or_else(String::new, |t| t.dialled.clone())
}

/// (seq, replayed) of every report of web1 in the store, in store order.
async fn stored(db: &str) -> anyhow::Result<Vec<(u64, bool)>> {
    let store = Store::connect(db).await?;
    let reports = store.reports_since("web1", 0).await?;
    Ok(reports
        .iter()
        .map(|r| (r.report.seq, r.report.replayed))
        .collect())
}

/// Collector A stops, the agent replays its spool on B, A returns and the
/// agent stays on B; B stops and the agent moves back to A. One report is
/// also stored by A whose answer the agent never saw (A stopped first): B
/// must recognise it. Every seq is in the store exactly once.
#[tokio::test]
async fn the_agent_moves_to_b_replays_there_and_nothing_doubles() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let db = shared_store(&fleet, "failover").await?;
    let a = start(&fleet, &db, "a", "127.0.0.1:0".parse()?).await?;
    let b = start(&fleet, &db, "b", "127.0.0.1:0".parse()?).await?;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let (a_url, b_url) = (format!("https://{a_addr}"), format!("https://{b_addr}"));
    let state = tempfile::tempdir()?;
    let mut agent = agent(
        &fleet,
        state.path(),
        vec![a_url.clone(), b_url.clone()],
        Arc::new(SystemResolver),
    )?;

    agent.enqueue().await?;
    assert!(agent.drain().await?, "both up: delivered");
    assert_eq!(current(&agent), a_url, "the first collector is used first");

    // Report 2 reaches A, which stores it, but the agent never learns so.
    agent.enqueue().await?;
    let spooled = std::fs::read_dir(state.path().join("spool"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "report"))
        .expect("report 2 is spooled");
    let two = HostReport::decode(std::fs::read(&spooled)?.as_slice())?;
    assert_eq!(two.seq, 2);
    let ack = fleet.agent(a_addr, "web1").await?.report(two).await?;
    assert!(!ack.into_inner().duplicate);

    // Both collectors go away: reports wait in the spool.
    a.stop().await?;
    b.stop().await?;
    for _ in 0..2 {
        agent.enqueue().await?;
        assert!(!agent.drain().await?, "no collector: kept");
    }
    assert_eq!(agent.waiting(), 3);

    // B returns, A stays down: the spool replays on B, in order.
    let b = start(&fleet, &db, "b", b_addr).await?;
    agent.enqueue().await?;
    drain_within(&mut agent, Duration::from_secs(20)).await?;
    assert_eq!(current(&agent), b_url);

    // A returns: the agent sticks to B.
    let a = start(&fleet, &db, "a", a_addr).await?;
    agent.enqueue().await?;
    assert!(agent.drain().await?);
    assert_eq!(
        current(&agent),
        b_url,
        "sticks to the collector that answers"
    );

    // B stops: the agent moves back to A.
    b.stop().await?;
    agent.enqueue().await?;
    drain_within(&mut agent, Duration::from_secs(20)).await?;
    assert_eq!(current(&agent), a_url);

    assert_eq!(
        stored(&db).await?,
        [
            (1, false),
            (2, false),
            (3, true),
            (4, true),
            (5, false),
            (6, false),
            (7, false)
        ],
        "each seq once, in order; the spool's replay is history"
    );
    let mut operator = fleet.operator(a_addr).await?;
    let hosts = operator
        .list_hosts(ListHostsRequest {})
        .await?
        .into_inner()
        .hosts;
    assert_eq!(hosts[0].reports, 7);
    a.stop().await
}

/// An ingest server with the collector's certificate that sheds every
/// report with `RESOURCE_EXHAUSTED`, as an overloaded collector does.
#[derive(Clone, Default)]
struct Overloaded {
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Ingest for Overloaded {
    type NudgesStream = tokio_stream::Pending<Result<Nudge, Status>>;

    async fn nudges(
        &self,
        _: Request<NudgeRequest>,
    ) -> Result<Response<Self::NudgesStream>, Status> {
        Err(Status::resource_exhausted("collector overloaded"))
    }

    async fn report(&self, _: Request<HostReport>) -> Result<Response<ReportAck>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Status::resource_exhausted(
            "collector overloaded (too many reports in flight); keep the report and retry later",
        ))
    }
}

async fn start_overloaded(fleet: &Fleet) -> anyhow::Result<(SocketAddr, Overloaded)> {
    let (cert, key) = gw502_pki::leaf_paths(&fleet.pki(), Role::Collector, "collector");
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ))
        .client_ca_root(Certificate::from_pem(std::fs::read(
            fleet.pki().join("ca.crt"),
        )?));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = Overloaded::default();
    let server = tonic::transport::Server::builder()
        .tls_config(tls)?
        .add_service(IngestServer::new(service.clone()))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    Ok((addr, service))
}

#[tokio::test]
async fn resource_exhausted_from_a_moves_the_agent_to_b() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let db = shared_store(&fleet, "exhausted").await?;
    let (a_addr, a) = start_overloaded(&fleet).await?;
    let b = start(&fleet, &db, "b", "127.0.0.1:0".parse()?).await?;
    let b_url = format!("https://{}", b.addr);
    let state = tempfile::tempdir()?;
    let mut agent = agent(
        &fleet,
        state.path(),
        vec![format!("https://{a_addr}"), b_url.clone()],
        Arc::new(SystemResolver),
    )?;
    for _ in 0..3 {
        agent.enqueue().await?;
        assert!(agent.drain().await?, "b takes what a sheds");
    }
    assert_eq!(current(&agent), b_url);
    assert_eq!(a.calls.load(Ordering::SeqCst), 1, "a is asked once");
    assert_eq!(stored(&db).await?, [(1, false), (2, false), (3, false)]);
    b.stop().await
}

/// Fixed answers for one name, as a DNS server with two A records gives.
struct TwoRecords(Vec<std::net::IpAddr>);

impl Resolve for TwoRecords {
    fn resolve(
        &self,
        _: String,
        _: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<std::net::IpAddr>>> + Send>> {
        let answer = self.0.clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// One name, two addresses: the agent dials each address and checks the
/// collector certificate against the name.
#[tokio::test]
async fn one_name_with_two_addresses_fails_over_between_them() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let db = shared_store(&fleet, "two_records").await?;
    let b = start(&fleet, &db, "b", "127.0.0.2:0".parse()?).await?;
    let port = b.addr.port();
    let Ok(a) = start(&fleet, &db, "a", SocketAddr::from(([127, 0, 0, 1], port))).await else {
        eprintln!("skipped: port {port} is taken on 127.0.0.1");
        return Ok(());
    };
    let state = tempfile::tempdir()?;
    let resolver = TwoRecords(vec!["127.0.0.1".parse()?, "127.0.0.2".parse()?]);
    let mut agent = agent(
        &fleet,
        state.path(),
        vec![format!("https://localhost:{port}")],
        Arc::new(resolver),
    )?;
    agent.enqueue().await?;
    assert!(agent.drain().await?);
    assert_eq!(current(&agent), format!("https://127.0.0.1:{port}"));
    a.stop().await?;
    agent.enqueue().await?;
    drain_within(&mut agent, Duration::from_secs(20)).await?;
    assert_eq!(current(&agent), format!("https://127.0.0.2:{port}"));
    assert_eq!(stored(&db).await?, [(1, false), (2, false)]);
    b.stop().await
}
