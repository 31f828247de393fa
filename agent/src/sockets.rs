//! The sockets evidence source: what listens on this host (`ss -tlnxp`).
//!
//! Listeners come from netlink sock_diag ([`netlink`]), or from the
//! `/proc/net/*` tables ([`procfs`]) when netlink is refused or when the proc
//! root is not the agent's own `/proc` (tests, containers). Each listener gets
//! its accept-queue length and backlog, its owning process and systemd unit
//! ([`owner`], cached between reports so busy hosts stay cheap) and, for unix
//! sockets, the socket file's mode and owner, which decide whether the proxy
//! may connect. The lead adds the owning units to the scope.

pub mod netlink;
pub mod owner;
pub mod procfs;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use gw502_proto::v1::{Listener, SocketsSection};

use self::netlink::RawListener;
pub use self::owner::{OwnerIndex, unit_from_cgroup};
pub use self::procfs::{ProcNetSocket, ProcNetUnix, parse_proc_net_tcp, parse_proc_net_unix};
use crate::source::{Roots, Scope, Source, Unavailable};

/// Largest `/proc/net/*` table read in the fallback (a host with 100,000
/// sockets has a ~15 MiB `tcp` table).
const MAX_TABLE_BYTES: u64 = 64 * 1024 * 1024;

/// Knobs of the sockets source.
#[derive(Debug, Clone)]
pub struct SocketsSettings {
    /// Bound on one collect, and the netlink receive timeout.
    pub timeout: Duration,
    /// Most listeners reported.
    pub max_listeners: usize,
    /// Skip netlink and read `/proc/net/*` (also chosen when netlink fails).
    pub force_procfs: bool,
}

impl Default for SocketsSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_listeners: 10_000,
            force_procfs: false,
        }
    }
}

/// Lists TCP and unix stream listeners with their owners.
#[derive(Debug, Default)]
pub struct SocketsSource {
    settings: SocketsSettings,
    owners: OwnerIndex,
}

impl SocketsSource {
    /// A source with the given settings.
    pub fn new(settings: SocketsSettings) -> Self {
        Self {
            settings,
            owners: OwnerIndex::default(),
        }
    }
}

impl Source for SocketsSource {
    type Section = SocketsSection;

    fn name(&self) -> &'static str {
        "sockets"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<SocketsSection, Unavailable> {
        let roots = scope.roots.clone();
        let settings = self.settings.clone();
        let mut owners = std::mem::take(&mut self.owners);
        let task = tokio::task::spawn_blocking(move || {
            let section = scan(&roots, &settings, &mut owners);
            (section, owners)
        });
        match tokio::time::timeout(self.settings.timeout, task).await {
            Ok(Ok((section, owners))) => {
                self.owners = owners;
                section
            }
            Ok(Err(join)) => Err(Unavailable::because(format!("socket scan failed: {join}"))),
            Err(_) => Err(Unavailable::because(format!(
                "socket scan took longer than {} ms",
                self.settings.timeout.as_millis()
            ))),
        }
    }
}

/// One full scan: listeners, owners and unix socket file modes.
pub fn scan(
    roots: &Roots,
    settings: &SocketsSettings,
    owners: &mut OwnerIndex,
) -> Result<SocketsSection, Unavailable> {
    let own_proc = roots.proc == Path::new("/proc");
    let (raw, method) = if own_proc && !settings.force_procfs {
        match netlink::dump_listeners(settings.timeout, settings.max_listeners) {
            Ok(raw) => (raw, "netlink"),
            Err(error) => {
                tracing::debug!(%error, "netlink sock_diag failed, reading /proc/net");
                (
                    read_proc_tables(&roots.proc, settings.max_listeners)?,
                    "procfs",
                )
            }
        }
    } else {
        (
            read_proc_tables(&roots.proc, settings.max_listeners)?,
            "procfs",
        )
    };

    let wanted: BTreeSet<u64> = raw.iter().map(|r| r.inode).filter(|&i| i != 0).collect();
    let found = owners.resolve(&roots.proc, &wanted);
    let mut listeners: Vec<Listener> = raw
        .into_iter()
        .map(|r| {
            let mut listener = Listener {
                family: r.family.to_string(),
                address: r.address,
                port: r.port,
                queued: r.queued,
                backlog: r.backlog,
                ..Listener::default()
            };
            if let Some(owner) = found.get(&r.inode) {
                listener.pid = owner.pid;
                listener.process.clone_from(&owner.process);
                listener.unit.clone_from(&owner.unit);
            }
            if listener.family == "unix"
                && listener.address.starts_with('/')
                && let Ok(meta) = std::fs::metadata(roots.host_path(Path::new(&listener.address)))
            {
                listener.mode = meta.mode() & 0o7777;
                listener.uid = meta.uid();
                listener.gid = meta.gid();
            }
            listener
        })
        .collect();
    listeners.sort_by(|a, b| (&a.family, &a.address, a.port).cmp(&(&b.family, &b.address, b.port)));
    Ok(SocketsSection {
        unavailable: String::new(),
        listeners,
        method: method.to_string(),
    })
}

fn read_table(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_TABLE_BYTES)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Listeners from `/proc/net/tcp`, `tcp6` (absent without IPv6) and `unix`.
fn read_proc_tables(proc_root: &Path, cap: usize) -> Result<Vec<RawListener>, Unavailable> {
    let tcp_path = proc_root.join("net/tcp");
    let tcp = read_table(&tcp_path)
        .map_err(|e| Unavailable::because(format!("cannot read {}: {e}", tcp_path.display())))?;
    let tcp6 = read_table(&proc_root.join("net/tcp6")).unwrap_or_default();
    let unix = read_table(&proc_root.join("net/unix")).unwrap_or_default();

    let tcp_rows = parse_proc_net_tcp(&tcp, false)
        .into_iter()
        .chain(parse_proc_net_tcp(&tcp6, true))
        .filter(ProcNetSocket::is_listener)
        .map(|s| RawListener {
            family: if s.v6 { "tcp6" } else { "tcp4" },
            address: s.local.to_string(),
            port: u32::from(s.local_port),
            queued: s.rx_queue,
            backlog: 0,
            inode: s.inode,
        });
    let unix_rows = parse_proc_net_unix(&unix)
        .into_iter()
        .filter(ProcNetUnix::is_stream_listener)
        .map(|u| RawListener {
            family: "unix",
            address: u.path.unwrap_or_default(),
            port: 0,
            queued: 0,
            backlog: 0,
            inode: u.inode,
        });
    Ok(tcp_rows.chain(unix_rows).take(cap).collect())
}

#[cfg(test)]
mod tests;
