//! A collector and its PKI started inside a test: real mTLS certificates from
//! `gw502ctl`'s PKI code, a real store (SQLite file, or a PostgreSQL schema),
//! and the collector's `server::run` on a port-0 listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gw502_collector::config::{Config, RawConfig, RawTls};
use gw502_pki::{self as pki, Role};
use gw502_proto::v1::ingest_client::IngestClient;
use gw502_proto::v1::query_client::QueryClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A fleet CA in a temp dir, with helpers to issue and load credentials.
pub struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    /// A new CA with a collector certificate for loopback.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        pki::init(&pki_dir(dir.path()))?;
        pki::issue(
            &pki_dir(dir.path()),
            Role::Collector,
            "collector",
            &["localhost".into(), "127.0.0.1".into()],
        )?;
        Ok(Self { dir })
    }

    /// The temp dir (PKI under `pki/`, databases beside it).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The PKI dir.
    pub fn pki(&self) -> PathBuf {
        pki_dir(self.dir.path())
    }

    /// Issues (or re-uses) a certificate.
    pub fn issue(&self, role: Role, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let (cert, key) = pki::leaf_paths(&self.pki(), role, name);
        if !cert.exists() {
            pki::issue(&self.pki(), role, name, &[])?;
        }
        Ok((cert, key))
    }

    /// A collector config with mTLS on loopback and the given database.
    pub fn collector_config(&self, database: &str, id: &str) -> anyhow::Result<Config> {
        let (cert, key) = pki::leaf_paths(&self.pki(), Role::Collector, "collector");
        let raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            database: Some(database.to_string()),
            id: Some(id.to_string()),
            tls: RawTls {
                ca: Some(self.pki().join("ca.crt")),
                cert: Some(cert),
                key: Some(key),
                plaintext: false,
                crl: None,
            },
            ..RawConfig::default()
        };
        Ok(raw.validate(Path::new("test"), Default::default())?)
    }

    /// A TLS channel to `addr` presenting `role`/`name`'s certificate.
    pub async fn channel(
        &self,
        addr: SocketAddr,
        role: Role,
        name: &str,
    ) -> anyhow::Result<Channel> {
        let (cert, key) = self.issue(role, name)?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(
                self.pki().join("ca.crt"),
            )?))
            .identity(Identity::from_pem(
                std::fs::read(cert)?,
                std::fs::read(key)?,
            ))
            .domain_name("localhost");
        Ok(Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(tls)?
            .connect()
            .await?)
    }

    /// An ingest client authenticated as agent `host`.
    pub async fn agent(
        &self,
        addr: SocketAddr,
        host: &str,
    ) -> anyhow::Result<IngestClient<Channel>> {
        Ok(IngestClient::new(
            self.channel(addr, Role::Agent, host).await?,
        ))
    }

    /// A query client authenticated as operator `admin`.
    pub async fn operator(&self, addr: SocketAddr) -> anyhow::Result<QueryClient<Channel>> {
        Ok(QueryClient::new(
            self.channel(addr, Role::Operator, "admin").await?,
        ))
    }
}

fn pki_dir(root: &Path) -> PathBuf {
    root.join("pki")
}

/// A running collector; stops when dropped or [`Running::stop`]ped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), gw502_collector::server::ServeError>>>,
}

impl Running {
    /// Starts a collector with `config` on `addr` (port 0 for any).
    pub async fn start(config: Config, addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(gw502_collector::server::run(config, listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops it and waits until the listener is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A database for one test: a SQLite file in `dir`, or — when
/// `GW502_TEST_DATABASE_URL` is set and `postgres` is asked for — a fresh
/// PostgreSQL schema named after the test.
pub async fn database(dir: &Path, test: &str, postgres: bool) -> anyhow::Result<Option<String>> {
    if !postgres {
        return Ok(Some(format!(
            "sqlite://{}",
            dir.join(format!("{test}.db")).display()
        )));
    }
    let Some(base) = std::env::var("GW502_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        if std::env::var_os("CI").is_some() {
            anyhow::bail!("GW502_TEST_DATABASE_URL must be set in CI (tests/run.sh sets it)");
        }
        eprintln!("GW502_TEST_DATABASE_URL not set: postgres part of {test} not run");
        return Ok(None);
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&base).await?;
    let schema = format!("it_{test}");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut admin)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(Some(format!(
        "{base}{sep}options=-c%20search_path%3D{schema}"
    )))
}
