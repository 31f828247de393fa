//! Which process (and which systemd unit) owns a listening socket.
//!
//! The kernel only tells us a socket's inode; the owner is whoever holds an fd
//! whose link reads `socket:[inode]`. Walking every fd of every process is what
//! makes `ss -p` slow on a busy host (50,000 connections means 100,000 fds), so
//! [`OwnerIndex`] keeps the `inode -> (pid, fd)` pairs from the last scan and
//! checks each with one `readlink`. Only inodes it has never placed trigger a
//! walk of `/proc/*/fd`, and the walk stops as soon as all of them are found.
//! Inodes a full walk could not place (sockets held by processes in another
//! pid namespace, or by nobody) are not searched again for a few scans.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Scans for which an inode a full walk could not place is left alone.
const MISS_TTL_SCANS: u32 = 10;

/// The process that owns a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub process: String,
    /// systemd unit from `/proc/PID/cgroup`, empty when none.
    pub unit: String,
}

/// Work done by one [`OwnerIndex::resolve`], for tests and benches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveStats {
    /// Owners confirmed from the cache with one readlink each.
    pub cache_hits: usize,
    /// Whether a `/proc/*/fd` walk ran.
    pub walked: bool,
    /// fd links read during the walk.
    pub links_read: usize,
}

/// Cache of socket owners, kept between scans.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    placed: HashMap<u64, (u32, u32)>,
    missed: HashMap<u64, u32>,
    /// What the last [`OwnerIndex::resolve`] did.
    pub last: ResolveStats,
}

impl OwnerIndex {
    /// Finds the owner of every inode in `wanted` that can be found, reading
    /// under `proc_root`.
    pub fn resolve(&mut self, proc_root: &Path, wanted: &BTreeSet<u64>) -> HashMap<u64, Owner> {
        let mut stats = ResolveStats::default();
        let mut pids: HashMap<u64, (u32, u32)> = HashMap::new();
        for &inode in wanted {
            if let Some(&(pid, fd)) = self.placed.get(&inode)
                && fd_inode(&proc_root.join(format!("{pid}/fd/{fd}"))) == Some(inode)
            {
                pids.insert(inode, (pid, fd));
                stats.cache_hits += 1;
            }
        }
        self.missed.retain(|inode, ttl| {
            *ttl = ttl.saturating_sub(1);
            *ttl > 0 && wanted.contains(inode)
        });
        let mut unknown: BTreeSet<u64> = wanted
            .iter()
            .copied()
            .filter(|inode| !pids.contains_key(inode) && !self.missed.contains_key(inode))
            .collect();
        if !unknown.is_empty() {
            stats.walked = true;
            stats.links_read = walk(proc_root, &mut unknown, &mut pids);
            for inode in unknown {
                self.missed.insert(inode, MISS_TTL_SCANS);
            }
        }
        self.placed = pids.clone();
        self.last = stats;
        let mut details: HashMap<u32, Owner> = HashMap::new();
        pids.into_iter()
            .map(|(inode, (pid, _))| {
                let owner = details
                    .entry(pid)
                    .or_insert_with(|| describe(proc_root, pid))
                    .clone();
                (inode, owner)
            })
            .collect()
    }
}

/// Walks `/proc/*/fd/*` in pid order until every inode in `unknown` is found;
/// found inodes leave `unknown` and land in `found`. Returns links read.
fn walk(
    proc_root: &Path,
    unknown: &mut BTreeSet<u64>,
    found: &mut HashMap<u64, (u32, u32)>,
) -> usize {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return 0;
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut links = 0;
    for pid in pids {
        let Ok(fds) = fs::read_dir(proc_root.join(format!("{pid}/fd"))) else {
            continue;
        };
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            links += 1;
            if let Some(inode) = fd_inode(&entry.path())
                && unknown.remove(&inode)
            {
                found.insert(inode, (pid, fd));
                if unknown.is_empty() {
                    return links;
                }
            }
        }
    }
    links
}

/// Reads an fd link and returns the socket inode it names, if it is a socket.
fn fd_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    parse_socket_link(target.to_str()?)
}

/// `socket:[12345]` -> 12345.
fn parse_socket_link(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn describe(proc_root: &Path, pid: u32) -> Owner {
    let base: PathBuf = proc_root.join(pid.to_string());
    let process = fs::read_to_string(base.join("comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default();
    let unit = fs::read_to_string(base.join("cgroup"))
        .map(|s| unit_from_cgroup(&s))
        .unwrap_or_default();
    Owner { pid, process, unit }
}

/// The systemd unit a `/proc/PID/cgroup` text places the process in: the last
/// `*.service`, `*.socket` or `*.scope` component of the unified (`0::`) path,
/// or of the v1 `name=systemd` path. Empty when there is none.
pub fn unit_from_cgroup(text: &str) -> String {
    let mut unified = None;
    let mut named = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            unified = Some(path);
        } else if controllers == "name=systemd" {
            named = Some(path);
        }
    }
    [unified, named]
        .into_iter()
        .flatten()
        .find_map(|path| {
            path.rsplit('/').find(|c| {
                [".service", ".socket", ".scope"]
                    .iter()
                    .any(|s| c.ends_with(s))
            })
        })
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_and_v1_paths_give_the_unit() {
        assert_eq!(
            unit_from_cgroup("0::/system.slice/nginx.service\n"),
            "nginx.service"
        );
        assert_eq!(
            unit_from_cgroup("0::/system.slice/app.service/worker/x\n"),
            "app.service"
        );
        assert_eq!(
            unit_from_cgroup("1:name=systemd:/system.slice/php8.2-fpm.service\n0::/\n"),
            "php8.2-fpm.service"
        );
        assert_eq!(
            unit_from_cgroup("0::/user.slice/user-0.slice/session-3.scope"),
            "session-3.scope"
        );
        assert_eq!(unit_from_cgroup("9:name=systemd:/\n0::/\n"), "");
        assert_eq!(unit_from_cgroup("garbage"), "");
    }

    #[test]
    fn socket_links_parse() {
        assert_eq!(parse_socket_link("socket:[42]"), Some(42));
        assert_eq!(parse_socket_link("pipe:[42]"), None);
        assert_eq!(parse_socket_link("socket:[x]"), None);
    }

    #[test]
    fn second_resolve_uses_the_cache_and_skips_the_walk() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let text = fs::read_to_string("/proc/net/tcp").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inode = super::super::procfs::parse_proc_net_tcp(&text, false)
            .into_iter()
            .find(|s| s.is_listener() && s.local_port == port)
            .unwrap()
            .inode;
        let wanted = BTreeSet::from([inode]);
        let mut index = OwnerIndex::default();
        let first = index.resolve(Path::new("/proc"), &wanted);
        assert_eq!(first[&inode].pid, std::process::id());
        assert!(index.last.walked);
        let second = index.resolve(Path::new("/proc"), &wanted);
        assert_eq!(second[&inode].pid, std::process::id());
        assert_eq!(index.last.cache_hits, 1);
        assert!(!index.last.walked);
        // An inode nobody holds is walked for once, then left alone.
        let ghost = BTreeSet::from([inode, u64::MAX]);
        index.resolve(Path::new("/proc"), &ghost);
        assert!(index.last.walked);
        index.resolve(Path::new("/proc"), &ghost);
        assert!(!index.last.walked);
    }
}
