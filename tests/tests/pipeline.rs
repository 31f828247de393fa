//! The fleet pipeline end to end: agents report to a real collector over real
//! mTLS, the collector stores in SQLite (and PostgreSQL when configured), and
//! operators query. Each refusal the security model promises is tested here.

use std::time::Duration;

use gw502_pki::Role;
use gw502_proto::v1::{
    HostReport, ListHostsRequest, ListIncidentsRequest, ProxyConfig, ProxyConfigSection,
    VirtualServer,
};
use gw502_tests::fleet::{Fleet, Running, database};
use tonic::Code;

fn report(host: &str, seq: u64) -> HostReport {
    HostReport {
        host_id: host.into(),
        agent_version: "test".into(),
        agent_instance: "i1".into(),
        seq,
        generated_at_ms: 1_700_000_000_000 + seq as i64,
        interval_ms: 10_000,
        full_snapshot: seq == 1,
        ..HostReport::default()
    }
}

async fn collector(fleet: &Fleet, test: &str) -> anyhow::Result<Running> {
    let db = database(fleet.path(), test, false)
        .await?
        .expect("sqlite always");
    Running::start(fleet.collector_config(&db, test)?, "127.0.0.1:0".parse()?).await
}

#[tokio::test]
async fn agent_reports_and_operator_sees_the_host() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let running = collector(&fleet, "sees_host").await?;
    let mut agent = fleet.agent(running.addr, "web1").await?;
    let ack = agent.report(report("web1", 1)).await?.into_inner();
    assert!(!ack.duplicate);
    let again = agent.report(report("web1", 1)).await?.into_inner();
    assert!(again.duplicate, "same (instance, seq) is stored once");

    let mut operator = fleet.operator(running.addr).await?;
    let hosts = operator
        .list_hosts(ListHostsRequest {})
        .await?
        .into_inner()
        .hosts;
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].host_id, "web1");
    assert_eq!(hosts[0].agent_version, "test");
    assert_eq!(hosts[0].reports, 1);
    let incidents = operator
        .list_incidents(ListIncidentsRequest::default())
        .await?
        .into_inner();
    assert!(incidents.incidents.is_empty());
    running.stop().await
}

#[tokio::test]
async fn a_host_may_only_report_as_itself() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let running = collector(&fleet, "only_itself").await?;
    let mut agent = fleet.agent(running.addr, "web1").await?;
    let status = agent.report(report("web2", 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("web1"), "{}", status.message());
    let mut operator = fleet.operator(running.addr).await?;
    assert!(
        operator
            .list_hosts(ListHostsRequest {})
            .await?
            .into_inner()
            .hosts
            .is_empty()
    );
    running.stop().await
}

#[tokio::test]
async fn agent_certificates_cannot_query_and_operators_cannot_report() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let running = collector(&fleet, "roles").await?;
    let channel = fleet.channel(running.addr, Role::Agent, "web1").await?;
    let mut as_agent = gw502_proto::v1::query_client::QueryClient::new(channel);
    let status = as_agent.list_hosts(ListHostsRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("operator"),
        "{}",
        status.message()
    );

    let channel = fleet.channel(running.addr, Role::Operator, "admin").await?;
    let mut as_operator = gw502_proto::v1::ingest_client::IngestClient::new(channel);
    let status = as_operator.report(report("admin", 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    running.stop().await
}

#[tokio::test]
async fn certificates_from_another_ca_are_refused_at_the_handshake() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let stranger = Fleet::new()?;
    let running = collector(&fleet, "other_ca").await?;
    // The stranger trusts our collector's CA but presents its own agent cert.
    let identity = Some(stranger.issue(Role::Agent, "web1")?);
    assert!(
        refused(&fleet, running.addr, identity).await?,
        "a certificate from another CA must not get through"
    );
    assert!(
        refused(&fleet, running.addr, None).await?,
        "a client without certificate must not get through"
    );
    let mut operator = fleet.operator(running.addr).await?;
    assert!(
        operator
            .list_hosts(ListHostsRequest {})
            .await?
            .into_inner()
            .hosts
            .is_empty()
    );
    running.stop().await
}

/// Whether a report sent with this client identity (cert, key) fails,
/// at the handshake or at the first call.
async fn refused(
    fleet: &Fleet,
    addr: std::net::SocketAddr,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> anyhow::Result<bool> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let ca = std::fs::read(fleet.pki().join("ca.crt"))?;
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert)?,
            std::fs::read(key)?,
        ));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls)?;
    Ok(match endpoint.connect().await {
        Err(_) => true,
        Ok(channel) => gw502_proto::v1::ingest_client::IngestClient::new(channel)
            .report(report("web1", 1))
            .await
            .is_err(),
    })
}

#[tokio::test]
async fn plaintext_is_refused_off_loopback() -> anyhow::Result<()> {
    let raw = gw502_collector::config::RawConfig {
        listen: Some("0.0.0.0:7502".into()),
        tls: gw502_collector::config::RawTls {
            plaintext: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = raw
        .validate(std::path::Path::new("t.toml"), Default::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("tls.plaintext: plaintext is only allowed on a loopback"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn oversized_reports_are_refused_and_the_collector_keeps_serving() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let running = collector(&fleet, "oversized").await?;
    let mut agent = fleet
        .agent(running.addr, "web1")
        .await?
        .max_encoding_message_size(64 << 20);
    let mut big = report("web1", 1);
    big.addresses = vec!["x".repeat(1 << 20); 6];
    let status = agent.report(big).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let ack = agent.report(report("web1", 2)).await?.into_inner();
    assert!(!ack.duplicate);
    running.stop().await
}

#[tokio::test]
async fn sites_are_discovered_from_proxy_configs() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let running = collector(&fleet, "discovery").await?;
    let mut agent = fleet.agent(running.addr, "web1").await?;
    let mut r = report("web1", 1);
    r.proxy_config = Some(ProxyConfigSection {
        proxies: vec![ProxyConfig {
            kind: "nginx".into(),
            servers: vec![VirtualServer {
                names: vec!["shop.example".into(), "_".into()],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    agent.report(r).await?;
    let mut operator = fleet.operator(running.addr).await?;
    let sites = operator
        .list_sites(gw502_proto::v1::ListSitesRequest {})
        .await?
        .into_inner()
        .sites;
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(sites[0].name, "shop.example");
    assert_eq!(sites[0].hosts, ["web1"]);
    assert_eq!(sites[0].origin, "discovered");
    running.stop().await
}

/// Two collectors on one PostgreSQL: an agent may talk to either, queries
/// through either see everything.
#[tokio::test]
async fn two_collectors_share_one_postgres() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let Some(db) = database(fleet.path(), "two_collectors", true).await? else {
        return Ok(());
    };
    let a = Running::start(fleet.collector_config(&db, "a")?, "127.0.0.1:0".parse()?).await?;
    let b = Running::start(fleet.collector_config(&db, "b")?, "127.0.0.1:0".parse()?).await?;
    let mut to_a = fleet.agent(a.addr, "web1").await?;
    let mut to_b = fleet.agent(b.addr, "web2").await?;
    let mut web1_to_b = fleet.agent(b.addr, "web1").await?;
    to_a.report(report("web1", 1)).await?;
    to_b.report(report("web2", 1)).await?;
    // web1 fails over to b: the same seq is a duplicate there too.
    assert!(
        web1_to_b
            .report(report("web1", 1))
            .await?
            .into_inner()
            .duplicate
    );
    web1_to_b.report(report("web1", 2)).await?;
    for addr in [a.addr, b.addr] {
        let mut operator = fleet.operator(addr).await?;
        let hosts = operator
            .list_hosts(ListHostsRequest {})
            .await?
            .into_inner()
            .hosts;
        let seen: Vec<_> = hosts
            .iter()
            .map(|h| (h.host_id.as_str(), h.reports))
            .collect();
        assert_eq!(seen, [("web1", 2), ("web2", 1)]);
    }
    a.stop().await?;
    b.stop().await
}

/// The collector goes away, reports pile up in the agent's spool, the
/// collector comes back on the same address, and every report arrives once.
#[tokio::test]
async fn the_agent_loses_nothing_while_the_collector_is_down() -> anyhow::Result<()> {
    let fleet = Fleet::new()?;
    let db = database(fleet.path(), "spool", false)
        .await?
        .expect("sqlite");
    let running = Running::start(
        fleet.collector_config(&db, "spool")?,
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let addr = running.addr;
    let (cert, key) = fleet.issue(Role::Agent, "web1")?;
    let state = tempfile::tempdir()?;
    let config = gw502_agent::config::RawConfig {
        host_id: Some("web1".into()),
        collector: Some(format!("https://{addr}")),
        state_dir: Some(state.path().to_path_buf()),
        tls: gw502_agent::config::RawTls {
            ca: Some(fleet.pki().join("ca.crt")),
            cert: Some(cert),
            key: Some(key),
            plaintext: false,
            crl: None,
        },
        ..Default::default()
    }
    .validate(std::path::Path::new("agent"), Default::default())?;
    let mut agent = gw502_agent::run::Agent::new(config)?;

    agent.enqueue().await?;
    assert!(agent.drain().await?, "collector up: delivered");
    running.stop().await?;

    for _ in 0..4 {
        agent.enqueue().await?;
        assert!(!agent.drain().await?, "collector down: kept");
    }
    assert_eq!(agent.waiting(), 4);

    let running = Running::start(fleet.collector_config(&db, "spool")?, addr).await?;
    agent.enqueue().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !agent.drain().await? {
        assert!(
            tokio::time::Instant::now() < deadline,
            "spool never drained"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(agent.waiting(), 0);

    let mut operator = fleet.operator(running.addr).await?;
    let hosts = operator
        .list_hosts(ListHostsRequest {})
        .await?
        .into_inner()
        .hosts;
    assert_eq!(
        hosts[0].reports, 6,
        "1 live + 4 spooled + 1 live, each exactly once"
    );
    let store = gw502_collector::store::Store::connect(&db).await?;
    let reports = store.reports_since("web1", 0).await?;
    let seqs: Vec<_> = reports.iter().map(|r| r.report.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let replayed: Vec<_> = reports.iter().map(|r| r.report.replayed).collect();
    assert_eq!(
        replayed,
        [false, true, true, true, true, false],
        "spooled reports are history"
    );
    running.stop().await
}
