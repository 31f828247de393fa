//! gw502-all-in-one, the quick start: `gw502-all-in-one --data-dir DIR` runs
//! a collector on embedded SQLite plus an in-process agent for this host,
//! over real mTLS on loopback. It is the one crate that links both daemons.
//!
//! The data dir holds everything: `pki/` (created if absent: CA, collector
//! `local`, operator `admin`, agent `<hostname>`), `collector.db`, the agent's
//! spool and cursor under `agent/`, and `endpoint`, the address gw502ctl
//! reads with `gw502ctl --data-dir DIR`.
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gw502_collector::config::{Config, RawConfig, RawTls};
use gw502_daemon::settings::Problems;
use gw502_pki::{self as pki, Role};
use tokio::net::TcpListener;

/// Options of the all-in-one mode.
#[derive(Debug, Clone)]
pub struct AllInOne {
    /// Where PKI, database and agent state live.
    pub data_dir: std::path::PathBuf,
    /// Loopback address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// Agent report interval.
    pub interval: Duration,
}

/// Runs collector and local agent until `shutdown` resolves.
pub async fn run(
    options: AllInOne,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let dir = &options.data_dir;
    std::fs::create_dir_all(dir)?;
    let pki_dir = dir.join("pki");
    pki::ensure(&pki_dir, &[])?;
    let (cert, key) = pki::leaf_paths(&pki_dir, Role::Collector, "local");
    let ca = pki_dir.join("ca.crt");
    let raw = RawConfig {
        listen: Some(options.listen.to_string()),
        database: Some(format!("sqlite://{}", dir.join("collector.db").display())),
        id: Some("local".into()),
        tls: RawTls {
            ca: Some(ca.clone()),
            cert: Some(cert),
            key: Some(key),
            plaintext: false,
            crl: None,
        },
        ..RawConfig::default()
    };
    let config: Config = raw.validate(Path::new("all-in-one"), Problems::default())?;
    let listener = TcpListener::bind(options.listen).await?;
    let endpoint = format!("https://{}", listener.local_addr()?);
    std::fs::write(dir.join("endpoint"), format!("{endpoint}\n"))?;
    tracing::info!(%endpoint, data_dir = %dir.display(), "all-in-one collector and local agent starting");

    let host_id = pki::local_hostname();
    let (agent_cert, agent_key) = pki::leaf_paths(&pki_dir, Role::Agent, &host_id);
    let agent_config = gw502_agent::config::RawConfig {
        host_id: Some(host_id),
        collector: Some(endpoint),
        interval: Some(gw502_daemon::settings::HumanDuration(options.interval)),
        state_dir: Some(dir.join("agent")),
        tls: gw502_agent::config::RawTls {
            ca: Some(ca),
            cert: Some(agent_cert),
            key: Some(agent_key),
            plaintext: false,
            crl: None,
        },
        ..gw502_agent::config::RawConfig::default()
    }
    .validate(Path::new("all-in-one agent"), Problems::default())?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let agent = gw502_agent::run::Agent::new(agent_config)?;
    let mut agent_stop = stop_rx.clone();
    let agent_task = tokio::spawn(agent.run(async move {
        let _ = agent_stop.changed().await;
    }));
    let mut server_stop = stop_rx;
    let server = tokio::spawn(gw502_collector::server::run(config, listener, async move {
        let _ = server_stop.changed().await;
    }));
    shutdown.await;
    let _ = stop_tx.send(true);
    agent_task.await??;
    server.await??;
    Ok(())
}
