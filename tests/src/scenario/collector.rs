//! The lab's collector: a fleet PKI in a temp dir (collector certificate valid for the
//! bridge address, one agent certificate per host, one operator certificate for
//! `gw502ctl`) and the real collector (`server::run`) in-process on `10.77.0.1:0`,
//! probing the scenario's sites over the bridge every second.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use gw502_collector::config::Config;
use gw502_pki::{self as pki, Role};

use crate::fleet::Running;
use crate::lab::BRIDGE_IP;

/// How often the collector re-evaluates sites and probes them in the lab.
pub const LAB_TICK: Duration = Duration::from_secs(1);
/// The evidence window of the lab collector.
pub const LAB_WINDOW: Duration = Duration::from_secs(30);

/// A site the collector watches: its public URL and the hosts expected to serve it.
#[derive(Debug, Clone)]
pub struct LabSite {
    /// Site name in incidents.
    pub name: String,
    /// URL the collector probes (a lab host's address).
    pub url: String,
    /// Host ids serving it.
    pub hosts: Vec<String>,
}

impl LabSite {
    /// Site `name` at `url` served by `hosts`.
    pub fn new(name: &str, url: &str, hosts: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        }
    }
}

/// The fleet PKI of one lab run.
#[derive(Debug)]
pub struct LabPki {
    dir: tempfile::TempDir,
}

impl LabPki {
    /// A new CA and a collector certificate for the bridge address.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let pki = dir.path().join("pki");
        pki::init(&pki)?;
        pki::issue(
            &pki,
            Role::Collector,
            "collector",
            &[BRIDGE_IP.to_string(), "localhost".into()],
        )?;
        pki::issue(&pki, Role::Operator, "lab", &[])?;
        Ok(Self { dir })
    }

    /// The PKI dir.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir().join("ca.crt")
    }

    /// Certificate and key of `role`/`name`, issued on first use.
    pub fn leaf(&self, role: Role, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let (cert, key) = pki::leaf_paths(&self.dir(), role, name);
        if !cert.exists() {
            pki::issue(&self.dir(), role, name, &[])?;
        }
        Ok((cert, key))
    }

    /// The PEM texts (CA, certificate, key) an agent named `host` needs.
    pub fn agent_pems(&self, host: &str) -> anyhow::Result<[String; 3]> {
        let (cert, key) = self.leaf(Role::Agent, host)?;
        let read =
            |p: &Path| std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()));
        Ok([read(&self.ca())?, read(&cert)?, read(&key)?])
    }

    /// The collector's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("collector.toml")
    }

    /// Where the collector's database goes.
    pub fn database_url(&self) -> String {
        format!(
            "sqlite://{}",
            self.dir.path().join("collector.db").display()
        )
    }
}

/// The collector config text for `sites`, fast enough for scenarios to attribute in seconds.
pub fn config_text(pki: &LabPki, sites: &[LabSite]) -> anyhow::Result<String> {
    let (cert, key) = pki.leaf(Role::Collector, "collector")?;
    let secs = |d: Duration| format!("{}s", d.as_secs());
    let mut text = format!(
        "listen = \"{BRIDGE_IP}:0\"\ndatabase = \"{}\"\nid = \"lab\"\nprobe_interval = \"{}\"\n\
         [tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [evaluation]\ninterval = \"{}\"\nwindow = \"{}\"\nresolve_after = 3\n\
         [edge]\nallow_cidrs = [\"10.77.0.0/24\"]\ntimeout = \"8s\"\n",
        pki.database_url(),
        secs(LAB_TICK),
        pki.ca().display(),
        cert.display(),
        key.display(),
        secs(LAB_TICK),
        secs(LAB_WINDOW),
    );
    for site in sites {
        let hosts: Vec<String> = site.hosts.iter().map(|h| format!("\"{h}\"")).collect();
        text.push_str(&format!(
            "[[sites]]\nname = \"{}\"\nurl = \"{}\"\nhosts = [{}]\n",
            site.name,
            site.url,
            hosts.join(", ")
        ));
    }
    Ok(text)
}

/// The collector's fixed address on the bridge (agents of a cold start are configured
/// with it before it runs; the lab lock keeps it free).
pub const ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(BRIDGE_IP), 17502);

/// Write the collector's config for `sites`; returns its path.
pub fn write_config(pki: &LabPki, sites: &[LabSite]) -> anyhow::Result<PathBuf> {
    let path = pki.config_path();
    std::fs::write(&path, config_text(pki, sites)?)?;
    Ok(path)
}

/// Start the collector for `sites` on [`ADDR`].
pub async fn start(pki: &LabPki, sites: &[LabSite]) -> anyhow::Result<Running> {
    let path = write_config(pki, sites)?;
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    Running::start(config, ADDR).await
}
