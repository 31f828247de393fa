//! What the lab finds in `/proc`: container leaders, lab nspawn processes and lab mounts.
//!
//! The harness must find the container's PID 1 (the "leader" that `nsenter` targets) and,
//! after a killed run, the leftovers of that run: `systemd-nspawn` processes booting a
//! root under the lab directory, orphaned container inits whose root overlay lives there,
//! and mounts under it. The parsers here are pure functions over the text of
//! `/proc/<pid>/status`, `/proc/<pid>/cmdline` and `/proc/<pid>/mountinfo`; the thin
//! readers around them skip processes that vanish while being read.

use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

/// Whether `status` (the text of `/proc/<pid>/status`) belongs to the init of a nested pid
/// namespace: its `NSpid` line lists more than one pid and the innermost is 1.
pub fn is_nested_init(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .map(|rest| {
            let pids: Vec<&str> = rest.split_whitespace().collect();
            pids.len() > 1 && pids.last() == Some(&"1")
        })
        .unwrap_or(false)
}

/// The parent pid from `status` (the text of `/proc/<pid>/status`).
pub fn parent_pid(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|rest| rest.trim().parse().ok())
}

/// Whether `cmdline` (NUL-separated `/proc/<pid>/cmdline`) is a `systemd-nspawn` booting a
/// directory under `lab_dir`.
pub fn is_lab_nspawn(cmdline: &[u8], lab_dir: &Path) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let Some(program) = args.first() else {
        return false;
    };
    if !program.ends_with(b"systemd-nspawn") {
        return false;
    }
    let prefix = format!("{}/", lab_dir.display());
    let under_lab = |arg: &[u8]| arg.starts_with(prefix.as_bytes());
    args.windows(2)
        .any(|pair| (pair[0] == b"-D" || pair[0] == b"--directory") && under_lab(pair[1]))
        || args.iter().any(|arg| {
            arg.strip_prefix(b"--directory=".as_slice())
                .is_some_and(under_lab)
        })
}

/// Mount points under `lab_dir` listed in `mountinfo` (the text of `/proc/<pid>/mountinfo`),
/// deepest first so they can be unmounted in order.
pub fn mounts_under(mountinfo: &str, lab_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mount_path(point)))
        .filter(|point| point.starts_with(lab_dir) && point != lab_dir)
        .collect();
    found.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    found.dedup();
    found
}

/// Whether `mountinfo` of a process shows a root overlay whose upper layer lives under
/// `lab_dir`, i.e. the process runs inside a lab host.
pub fn has_lab_root(mountinfo: &str, lab_dir: &Path) -> bool {
    let needle = format!("upperdir={}/", lab_dir.display());
    mountinfo.lines().any(|line| {
        let mut fields = line.split(' ');
        fields.nth(4) == Some("/") && line.contains(" - overlay ") && line.contains(&needle)
    })
}

/// Undo the octal escapes (`\040` for a space) the kernel uses in mountinfo paths.
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(value)) => {
                out.push(value);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// All numeric entries of `/proc`.
fn all_pids() -> Vec<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

fn read_status(pid: Pid) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The container's systemd among the children of `nspawn`, once it has been exec'd (before
/// that, the pid-namespace init is still nspawn setting up the container's mounts).
pub fn find_leader(nspawn: Pid) -> Option<Pid> {
    all_pids().into_iter().find(|pid| {
        read_status(*pid).is_some_and(|status| {
            parent_pid(&status) == Some(nspawn.as_raw())
                && is_nested_init(&status)
                && status.lines().next() == Some("Name:\tsystemd")
        })
    })
}

/// Running `systemd-nspawn` processes that boot a root under `lab_dir`.
pub fn lab_nspawns(lab_dir: &Path) -> Vec<Pid> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| is_lab_nspawn(&cmdline, lab_dir))
        })
        .collect()
}

/// Container inits (also orphaned ones) whose root overlay lives under `lab_dir`.
pub fn lab_inits(lab_dir: &Path) -> Vec<Pid> {
    all_pids()
        .into_iter()
        .filter(|pid| read_status(*pid).is_some_and(|status| is_nested_init(&status)))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                .is_ok_and(|info| has_lab_root(&info, lab_dir))
        })
        .collect()
}

/// Mount points under `lab_dir` in the machine's mount namespace, deepest first.
pub fn lab_mounts(lab_dir: &Path) -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|info| mounts_under(&info, lab_dir))
        .unwrap_or_default()
}

/// Whether the process `pid` still exists (and is not a zombie we could reap).
pub fn alive(pid: Pid) -> bool {
    read_status(pid).is_some_and(|status| {
        !status
            .lines()
            .any(|line| line.starts_with("State:") && line.contains("Z (zombie)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a host1 container booted by this harness (systemd 252, Debian 12).
    const LEADER_STATUS: &str = "Name:\tsystemd\nUmask:\t0000\nState:\tS (sleeping)\n\
        Tgid:\t20572\nNgid:\t0\nPid:\t20572\nPPid:\t20563\nTracerPid:\t0\n\
        NStgid:\t20572\t1\nNSpid:\t20572\t1\nNSpgid:\t20572\t1\n";
    const PLAIN_STATUS: &str = "Name:\tbash\nPid:\t77\nPPid:\t1\nNSpid:\t77\n";

    #[test]
    fn leader_status_is_nested_init() {
        assert!(is_nested_init(LEADER_STATUS));
        assert_eq!(parent_pid(LEADER_STATUS), Some(20563));
        assert!(!is_nested_init(PLAIN_STATUS));
        assert!(!is_nested_init("NSpid:\t20572\t33\n"));
        assert!(!is_nested_init(""));
    }

    #[test]
    fn nspawn_cmdline_matches_only_lab_roots() {
        let lab = Path::new("/var/tmp/gw502-lab");
        let ours = b"systemd-nspawn\0-D\0/var/tmp/gw502-lab/host1/r\0--register=no\0-b\0";
        assert!(is_lab_nspawn(ours, lab));
        let long = b"/usr/bin/systemd-nspawn\0--directory=/var/tmp/gw502-lab/h/r\0-b\0";
        assert!(is_lab_nspawn(long, lab));
        let other = b"systemd-nspawn\0-D\0/var/lib/machines/web\0-b\0";
        assert!(!is_lab_nspawn(other, lab));
        let not_nspawn = b"vim\0-D\0/var/tmp/gw502-lab/host1/r\0";
        assert!(!is_lab_nspawn(not_nspawn, lab));
        assert!(!is_lab_nspawn(b"", lab));
    }

    // Lines of the machine's /proc/self/mountinfo while host1 was up.
    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
301 22 0:61 / /var/tmp/gw502-lab/host1/t rw,relatime - tmpfs tmpfs rw
302 22 0:62 / /var/tmp/gw502-lab/host1/r rw,relatime - overlay overlay rw,lowerdir=/,upperdir=/var/tmp/gw502-lab/host1/t/upper,workdir=/var/tmp/gw502-lab/host1/t/work
303 22 0:63 / /var/tmp/gw502-lab/with\\040space rw - tmpfs tmpfs rw
304 22 0:64 / /var/tmp/gw502-labX rw - tmpfs tmpfs rw
";

    #[test]
    fn mounts_under_lab_deepest_first() {
        let found = mounts_under(MOUNTINFO, Path::new("/var/tmp/gw502-lab"));
        assert_eq!(
            found,
            vec![
                PathBuf::from("/var/tmp/gw502-lab/host1/t"),
                PathBuf::from("/var/tmp/gw502-lab/host1/r"),
                PathBuf::from("/var/tmp/gw502-lab/with space"),
            ]
        );
    }

    #[test]
    fn lab_root_seen_in_container_mountinfo() {
        let lab = Path::new("/var/tmp/gw502-lab");
        let inside = "500 400 0:62 / / rw,relatime - overlay overlay rw,lowerdir=/,upperdir=/var/tmp/gw502-lab/host1/t/upper,workdir=/var/tmp/gw502-lab/host1/t/work\n";
        assert!(has_lab_root(inside, lab));
        assert!(!has_lab_root(MOUNTINFO, lab));
    }
}
