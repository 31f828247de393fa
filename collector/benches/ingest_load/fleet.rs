//! The fleet under test: a CA with a collector certificate on disk, one
//! in-memory agent certificate per simulated host (each host reports as
//! itself, as real agents must), and the real `gw502-collector` binary run
//! as a child process so its memory and CPU are its own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gw502_pki::{self as pki, Identity, Role};
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

/// One row of a collector histogram.
#[derive(Debug, Default)]
pub struct Timing {
    /// The label value (operation, pass).
    pub name: String,
    /// Total seconds.
    pub seconds: f64,
    /// Observations.
    pub count: u64,
    /// The largest value in the exporter's recent window.
    pub max: f64,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:.1} s / {} = mean {:.2} ms, max {:.1} ms",
            self.name,
            self.seconds,
            self.count,
            self.seconds * 1000.0 / self.count as f64,
            self.max * 1000.0
        )
    }
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

    /// The collector's own histograms `metric` so far, one row per label
    /// value (`label`): total seconds, count and the largest recent value,
    /// most total time first. `gw502_db_seconds` by `op` shows where ingest
    /// time went; `gw502_collector_evaluation_seconds` by `pass` how long
    /// attribution passes take.
    pub fn histogram(&self, metric: &str, label: &str) -> anyhow::Result<Vec<Timing>> {
        let mut stream = TcpStream::connect(self.metrics)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: collector\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let mut rows: std::collections::BTreeMap<String, Timing> = Default::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Some((name, labels)) = series.split_once('{') else {
                continue;
            };
            let Some(key) = labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{label}=\"")))
                .and_then(|v| v.split('"').next())
            else {
                continue;
            };
            let row = rows.entry(key.to_owned()).or_insert_with(|| Timing {
                name: key.to_owned(),
                ..Timing::default()
            });
            if name == format!("{metric}_sum") {
                row.seconds = value.parse()?;
            } else if name == format!("{metric}_count") {
                row.count = value.parse()?;
            } else if name == metric && labels.contains("quantile=\"1\"") {
                row.max = value.parse()?;
            }
        }
        let mut rows: Vec<Timing> = rows.into_values().filter(|r| r.count > 0).collect();
        rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        Ok(rows)
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
