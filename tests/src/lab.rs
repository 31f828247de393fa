//! The lab: real systemd hosts booted as `systemd-nspawn` containers on one machine.
//!
//! End-to-end scenarios need hosts that behave like production web hosts: their own
//! systemd, journald, D-Bus, network stack and units (nginx, PHP-FPM, HAProxy, an app, the
//! gw502 agent). [`Lab::start`] takes an exclusive lock (so parallel tests queue up),
//! sweeps leftovers of a killed run and creates the bridge `gw502lab0` (10.77.0.1/24);
//! [`Lab::boot`] boots a [`Host`] from a [`HostSpec`] on an overlay of the machine's `/`
//! with a tmpfs upper, so installed packages and built binaries are visible inside and
//! every write is thrown away. Dropping the `Lab` (also while a test panics) halts the
//! hosts, unmounts their roots and deletes the bridge. See `/work/shared/LAB.md`.
//!
//! # Layout
//!
//! - [`spec`]: [`HostSpec`], what a host should be.
//! - [`image`]: turning an overlay of `/` into that host's root.
//! - [`host`]: one booted host, `exec` into it, its teardown.
//! - [`sweep`]: preflight checks and removal of leftovers of a killed run.
//! - [`fixtures`]: configs and units for common host shapes.
//! - [`cgroup`]: a cgroup tree per host, so hosts' systemds do not share one.
//! - [`rootfs`], [`procs`], [`run`]: path resolution inside a root, `/proc` scanning,
//!   bounded command runs.

pub mod cgroup;
pub mod fixtures;
pub mod host;
pub mod image;
pub mod procs;
pub mod rootfs;
pub mod run;
pub mod spec;
pub mod sweep;

use std::fs::{self, File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};

pub use host::Host;
pub use spec::{HostSpec, LabFile};

/// Where host roots, boot logs and the lock live.
pub const LAB_DIR: &str = "/var/tmp/gw502-lab";
/// The lab bridge on the machine.
pub const BRIDGE: &str = "gw502lab0";
/// The machine's address on the lab bridge (collectors listen here).
pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The bridge's fixed, locally administered MAC address.
const BRIDGE_MAC: &str = "02:77:00:00:00:01";
/// How long halting hosts may take before they are killed.
pub const HALT_DEADLINE: Duration = Duration::from_secs(15);
/// Bound on each `ip` command.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running lab: the lock, the bridge and the booted hosts. Drop tears it all down.
#[derive(Debug)]
pub struct Lab {
    hosts: Vec<Host>,
    _lock: Flock<File>,
}

impl Lab {
    /// Check root and tools, take the lab lock, sweep leftovers, create the bridge.
    pub fn start() -> anyhow::Result<Lab> {
        sweep::preflight()?;
        let lab_dir = Path::new(LAB_DIR);
        let lock = lock_lab()?;
        sweep::leftovers(lab_dir)?;
        create_bridge()?;
        Ok(Lab {
            hosts: Vec::new(),
            _lock: lock,
        })
    }

    /// The machine's address on the lab bridge: 10.77.0.1.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        BRIDGE_IP
    }

    /// Boot one host and wait until systemd says it is running (or degraded).
    pub fn boot(&mut self, spec: HostSpec) -> anyhow::Result<&Host> {
        self.boot_all(vec![spec])?;
        self.hosts.last().context("no host booted")
    }

    /// Boot several hosts at once (all start, then each is waited for).
    pub fn boot_all(&mut self, specs: Vec<HostSpec>) -> anyhow::Result<()> {
        for (i, spec) in specs.iter().enumerate() {
            spec.validate()?;
            let clash = |name: &str, ip: Ipv4Addr| name == spec.name || ip == spec.ip();
            if self.hosts.iter().any(|h| clash(h.name(), h.ip()))
                || specs[..i].iter().any(|s| clash(&s.name, s.ip()))
            {
                bail!(
                    "host {} or its address {} is already in the lab",
                    spec.name,
                    spec.ip()
                );
            }
        }
        let mut starting = Vec::new();
        for spec in &specs {
            let mut host = Host::prepare(Path::new(LAB_DIR), spec, BRIDGE_IP)
                .with_context(|| format!("prepare host {}", spec.name))?;
            host.spawn(BRIDGE)?;
            starting.push(host);
        }
        for host in &mut starting {
            host.wait_ready()?;
            tracing::info!(
                host = host.name(),
                boot_ms = host.boot_time().as_millis() as u64,
                "lab host up"
            );
        }
        self.hosts.extend(starting);
        Ok(())
    }

    /// The booted host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// All booted hosts in boot order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            host.halt();
        }
        let deadline = Instant::now() + HALT_DEADLINE;
        for host in &mut self.hosts {
            host.finish_teardown(deadline);
        }
        self.hosts.clear();
        cgroup::remove_all();
        if let Err(error) = delete_bridge() {
            tracing::error!(bridge = BRIDGE, error = %format!("{error:#}"), "cannot delete lab bridge");
        }
    }
}

/// Take the exclusive lab lock, waiting for a lab of another test or process to end.
fn lock_lab() -> anyhow::Result<Flock<File>> {
    fs::create_dir_all(LAB_DIR).with_context(|| format!("create {LAB_DIR}"))?;
    let lock_path = Path::new(LAB_DIR).join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((file, _)) => {
            tracing::info!(lock = %lock_path.display(), "waiting for another lab to finish");
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("lock {}", lock_path.display()))
        }
    }
}

fn create_bridge() -> anyhow::Result<()> {
    let steps: [&[&str]; 3] = [
        // A fixed MAC: otherwise the bridge takes the lowest port MAC, which changes as
        // hosts join and leaves stale ARP entries for 10.77.0.1 in the hosts booted first.
        &[
            "link", "add", BRIDGE, "address", BRIDGE_MAC, "type", "bridge",
        ],
        &["addr", "add", "10.77.0.1/24", "dev", BRIDGE],
        &["link", "set", BRIDGE, "up"],
    ];
    for step in steps {
        if let Err(error) = run::checked(Command::new(sweep::tool("ip")).args(step), IP_TIMEOUT) {
            let _ = delete_bridge();
            return Err(error.context("create lab bridge"));
        }
    }
    Ok(())
}

/// Delete the lab bridge if it exists.
pub fn delete_bridge() -> anyhow::Result<()> {
    if bridge_exists() {
        run::checked(
            Command::new(sweep::tool("ip")).args(["link", "del", BRIDGE]),
            IP_TIMEOUT,
        )?;
    }
    Ok(())
}

/// Whether the lab bridge exists on the machine.
pub fn bridge_exists() -> bool {
    Path::new("/sys/class/net").join(BRIDGE).exists()
}

/// What of a lab is still on the machine (mounts, nspawn processes, the bridge), for
/// asserting a clean teardown; empty when nothing is left. Takes the lab lock so another
/// test's lab is not mistaken for leftovers: never call it while holding a [`Lab`].
pub fn leftovers() -> Vec<String> {
    let _lock = match lock_lab() {
        Ok(lock) => lock,
        Err(error) => return vec![format!("lab lock: {error:#}")],
    };
    let lab_dir = Path::new(LAB_DIR);
    let mut left: Vec<String> = procs::lab_mounts(lab_dir)
        .into_iter()
        .map(|m| format!("mount {}", m.display()))
        .collect();
    left.extend(
        procs::lab_nspawns(lab_dir)
            .into_iter()
            .map(|p| format!("systemd-nspawn pid {p}")),
    );
    left.extend(
        procs::lab_inits(lab_dir)
            .into_iter()
            .map(|p| format!("container init pid {p}")),
    );
    left.extend(
        cgroup::lab_processes()
            .into_iter()
            .map(|p| format!("lab cgroup pid {p}")),
    );
    if bridge_exists() {
        left.push(format!("bridge {BRIDGE}"));
    }
    left
}
