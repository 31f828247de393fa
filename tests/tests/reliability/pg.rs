//! A private PostgreSQL server for one fault test: its own cluster in a temp
//! dir on a free loopback port, so the test may stop, restart and starve it
//! without touching anyone else's database. `postgres` runs as the
//! `postgres` user when the test runs as root (it refuses root), started
//! directly (no `pg_ctl`, no shell), and is stopped with SIGINT (fast
//! shutdown) or SIGKILL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};
use std::os::unix::process::CommandExt;

/// A running (or stopped) private cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    user: Option<User>,
    child: Option<Child>,
}

impl PgCluster {
    /// A fresh cluster, started. `None` when no PostgreSQL server is
    /// installed (CI installs it: tests/run.sh).
    pub async fn start() -> anyhow::Result<Option<PgCluster>> {
        let Some(bin) = server_bin() else {
            anyhow::ensure!(
                std::env::var_os("CI").is_none(),
                "postgresql must be installed in CI"
            );
            eprintln!("no postgresql server under /usr/lib/postgresql: reliability tests not run");
            return Ok(None);
        };
        let dir = tempfile::Builder::new().prefix("gw502-pg").tempdir()?;
        let user = if nix::unistd::geteuid().is_root() {
            let user = User::from_name("postgres")?
                .ok_or_else(|| anyhow::anyhow!("no postgres user to run the server as"))?;
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))?;
            Some(user)
        } else {
            None
        };
        let mut cluster = PgCluster {
            port: free_port()?,
            dir,
            bin,
            user,
            child: None,
        };
        let out = cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(cluster.data())
            .stdout(Stdio::null())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.resume().await?;
        Ok(Some(cluster))
    }

    /// The URL collectors use.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        if let Some(user) = &self.user {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        // Written through the inherited descriptor, so root may own it.
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("postgres-{}.log", chrono_tag())),
        )?;
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            use sqlx::Connection;
            if sqlx::PgConnection::connect(&self.url()).await.is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "postgres did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server: a fast shutdown (SIGINT) that ends every session.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGINT)?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn chrono_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The newest installed server's `bin` directory.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A loopback port nothing listens on now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
