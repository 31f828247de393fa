//! The fleet under test: a CA with a collector certificate on disk, one
//! in-memory agent certificate per simulated host (each host reports as
//! itself, as real agents must), and the real `gw502-collector` binary run
//! as a child process so its memory and CPU are its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gw502_collector::pki::{self, Identity, Role};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate and key, PEM.
pub struct Credentials {
    /// The host this certificate names.
    pub host: String,
    /// Certificate PEM.
    pub cert: String,
    /// Key PEM.
    pub key: String,
}

/// The CA directory with a collector certificate for loopback.
pub fn init_pki(dir: &Path) -> anyhow::Result<()> {
    pki::init(dir)?;
    pki::issue(
        dir,
        Role::Collector,
        "collector",
        &["localhost".into(), "127.0.0.1".into()],
    )?;
    Ok(())
}

/// Agent certificates `host-00000` … for `count` hosts, issued on every core.
pub fn agent_credentials(dir: &Path, count: usize) -> anyhow::Result<Vec<Credentials>> {
    let ca_cert = std::fs::read_to_string(dir.join("ca.crt"))?;
    let ca_key = std::fs::read_to_string(dir.join("ca.key"))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<usize>> = (0..threads)
        .map(|t| (t..count).step_by(threads).collect())
        .collect();
    let mut all: Vec<Credentials> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let (ca_cert, ca_key) = (&ca_cert, &ca_key);
                scope.spawn(move || -> anyhow::Result<Vec<Credentials>> {
                    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
                    chunk
                        .iter()
                        .map(|&i| agent(&issuer, &host_name(i)))
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(count);
        for handle in handles {
            out.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("issuer thread panicked"))??,
            );
        }
        anyhow::Ok(out)
    })?;
    all.sort_by(|a, b| a.host.cmp(&b.host));
    Ok(all)
}

/// The name of simulated host `i`.
pub fn host_name(i: usize) -> String {
    format!("host-{i:05}")
}

fn agent(issuer: &Issuer<'_, KeyPair>, host: &str) -> anyhow::Result<Credentials> {
    let identity = Identity {
        role: Role::Agent,
        name: host.to_owned(),
    };
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "gw502");
    dn.push(DnType::CommonName, host);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = vec![SanType::URI(identity.uri().as_str().try_into()?)];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(Credentials {
        host: host.to_owned(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A running `gw502-collector run`; killed when dropped.
pub struct Collector {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its Prometheus metrics address.
    pub metrics: SocketAddr,
    child: Child,
}

impl Collector {
    /// Starts the collector binary on a free loopback port with `database`.
    pub fn start(work: &Path, pki: &Path, database: &str) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let metrics = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = work.join("collector.toml");
        let toml = format!(
            "listen = \"{addr}\"\ndatabase = \"{database}\"\nid = \"bench\"\nmetrics_listen = \"{metrics}\"\n\n[tls]\n\
             ca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            ca = pki.join("ca.crt").display(),
            cert = pki.join("collectors/collector.crt").display(),
            key = pki.join("collectors/collector.key").display(),
        );
        std::fs::write(&config, toml)?;
        let log = std::fs::File::create(work.join("collector.log"))?;
        let child = Command::new(collector_binary())
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let collector = Collector {
            addr,
            metrics,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "collector did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(collector)
    }

    /// Seconds spent in each database operation so far, most first, from the
    /// collector's own `gw502_db_seconds` histogram: where ingest time went.
    pub fn db_seconds_by_op(&self) -> anyhow::Result<Vec<(String, f64, u64)>> {
        let mut stream = TcpStream::connect(self.metrics)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: collector\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let mut ops: std::collections::BTreeMap<String, (f64, u64)> = Default::default();
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let op = |prefix: &str| {
                name.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix("{op=\""))
                    .and_then(|rest| rest.strip_suffix("\"}"))
                    .map(str::to_owned)
            };
            if let Some(op) = op("gw502_db_seconds_sum") {
                ops.entry(op).or_default().0 = value.parse()?;
            } else if let Some(op) = op("gw502_db_seconds_count") {
                ops.entry(op).or_default().1 = value.parse()?;
            }
        }
        let mut ops: Vec<_> = ops.into_iter().map(|(op, (s, n))| (op, s, n)).collect();
        ops.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ops)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collector_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gw502-collector"))
}
