//! Real collector processes for the fault tests: a config file written
//! from the test's PKI and private PostgreSQL, `gw502-collector run` on a
//! fixed loopback port (so agents find it again after a restart), its
//! stderr kept in a file the test reads for the operator's log lines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use gw502_pki::Role;
use gw502_tests::fleet::Fleet;
use gw502_tests::scenario::agent::workspace_bin;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What differs between the collectors of a test.
pub struct Spec<'a> {
    /// The collector's id.
    pub id: &'a str,
    /// The database URL.
    pub database: &'a str,
    /// Webhook receivers: (name, url).
    pub hooks: &'a [(&'a str, String)],
    /// Extra top-level TOML (e.g. sites).
    pub extra: &'a str,
}

/// The config file of a collector.
pub fn config_text(fleet: &Fleet, spec: &Spec<'_>, port: u16, secret: &Path) -> String {
    let pki = fleet.pki();
    let (cert, key) = gw502_pki::leaf_paths(&pki, Role::Collector, "collector");
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\ndatabase = \"{db}\"\nid = \"{id}\"\n\
         lease_ttl = \"2s\"\nshutdown_grace = \"5s\"\nprobe_interval = \"1s\"\n{extra}\n\
         [tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [evaluation]\ninterval = \"300ms\"\nresolve_after = 2\n\
         [routing]\nmax_attempts = 40\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\n",
        db = spec.database,
        id = spec.id,
        extra = spec.extra,
        ca = pki.join("ca.crt").display(),
        cert = cert.display(),
        key = key.display(),
    );
    for (name, _) in spec.hooks {
        text.push_str(&format!(
            "[[routing.rules]]\nreceiver = \"{name}\"\ncontinue = true\n\
             match = {{ site = \"sim*\" }}\n"
        ));
    }
    for (name, url) in spec.hooks {
        text.push_str(&format!(
            "[routing.receivers.{name}]\nkind = \"webhook\"\nurl = \"{url}\"\n\
             secret_file = \"{secret}\"\ntimeout = \"1s\"\n",
            secret = secret.display()
        ));
    }
    text
}

/// A running `gw502-collector` process.
pub struct Collector {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its config file.
    pub config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Collector {
    /// Writes `text` to `<dir>/<name>.toml` and starts a collector on it;
    /// waits until it accepts connections.
    pub async fn start(dir: &Path, name: &str, port: u16, text: &str) -> anyhow::Result<Self> {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, text)?;
        let log = dir.join(format!("{name}.log"));
        let mut collector = Collector {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            config,
            log,
            child: None,
        };
        collector.restart().await?;
        Ok(collector)
    }

    /// Starts the process (again) on the same config and port; its log
    /// is appended to.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let served_before = self.log_lines("collector serving").len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(workspace_bin("gw502-collector")?)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env_remove("GW502_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        // Serving: the store is migrated and the loops run (the listener
        // is bound before that).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.log_lines("collector serving").len() == served_before {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!("collector exited with {status}: {}", self.log_text());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "collector did not start serving"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// `kill -9`.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("collector not running"))?;
        kill(Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// Waits (bounded) for the process to exit; returns its status.
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Ok(status);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "collector did not exit"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        log_text(&self.log)
    }

    /// Log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        log_lines(&self.log, needle)
    }
}

/// A process's log file so far (empty before it wrote one).
pub fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The lines of log file `log` containing `needle`.
pub fn log_lines(log: &Path, needle: &str) -> Vec<String> {
    log_text(log)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
