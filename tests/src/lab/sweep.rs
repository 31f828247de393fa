//! Before a lab starts: check it can run here, and clear what a killed run left behind.
//!
//! A test binary killed mid-run (SIGKILL, a CI timeout) skips every `Drop`, leaving
//! nspawn processes, container inits, overlay and tmpfs mounts under the lab directory and
//! the bridge. [`leftovers`] removes them in that order; it runs with the lab lock held,
//! so whatever it finds belongs to no live lab.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};

use super::{cgroup, delete_bridge, host, procs, run};

/// Tools the lab runs and the Debian packages that provide them.
const TOOLS: [(&str, &str); 3] = [
    ("systemd-nspawn", "systemd-container"),
    ("nsenter", "util-linux"),
    ("ip", "iproute2"),
];

/// Fail with a clear message unless the lab can run here (root, nspawn, nsenter, ip).
pub fn preflight() -> anyhow::Result<()> {
    if !geteuid().is_root() {
        bail!(
            "the gw502 lab needs root (euid 0, now {}) to mount overlays, create the bridge {} and run systemd-nspawn",
            geteuid(),
            super::BRIDGE
        );
    }
    for (tool, package) in TOOLS {
        if find_program(tool).is_none() {
            bail!("the gw502 lab needs {tool} on PATH: install the Debian package {package}");
        }
    }
    Ok(())
}

/// `name` as an absolute path if found (see [`find_program`]), else as given, for
/// `Command::new`: the test's PATH may lack the sbin dirs where `ip` lives.
pub fn tool(name: &str) -> std::path::PathBuf {
    find_program(name).unwrap_or_else(|| name.into())
}

/// The first executable named `name` on PATH (plus the sbin dirs root normally has).
pub fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Into::into))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Remove everything a previous run left under `lab_dir`, and the bridge.
pub fn leftovers(lab_dir: &Path) -> anyhow::Result<()> {
    let nspawns = procs::lab_nspawns(lab_dir);
    if !nspawns.is_empty() {
        tracing::warn!(pids = ?nspawns, "halting systemd-nspawn left by an earlier lab");
        signal_all(&nspawns, Signal::SIGTERM);
        if !wait_gone(&nspawns, super::HALT_DEADLINE) {
            signal_all(&nspawns, Signal::SIGKILL);
        }
    }
    let inits = procs::lab_inits(lab_dir);
    if !inits.is_empty() {
        tracing::warn!(pids = ?inits, "killing container inits left by an earlier lab");
        signal_all(&inits, Signal::SIGKILL);
    }
    let in_cgroups = cgroup::kill_all();
    if !in_cgroups.is_empty() {
        tracing::warn!(pids = ?in_cgroups, "killed processes left in lab cgroups");
    }
    let all: Vec<Pid> = nspawns.into_iter().chain(inits).chain(in_cgroups).collect();
    if !wait_gone(&all, Duration::from_secs(5)) {
        bail!("processes of an earlier lab survive SIGKILL: {all:?}");
    }
    cgroup::remove_all();
    for point in procs::lab_mounts(lab_dir) {
        tracing::warn!(point = %point.display(), "unmounting mount left by an earlier lab");
        host::unmount(&point);
    }
    let still = procs::lab_mounts(lab_dir);
    if !still.is_empty() {
        bail!("mounts of an earlier lab cannot be removed: {still:?}");
    }
    // Safe now: nothing is mounted below, so removal cannot reach the machine's files.
    if let Ok(entries) = fs::read_dir(lab_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
                    .map_err(|e| anyhow::anyhow!("remove {}: {e}", path.display()))?;
            }
        }
    }
    delete_bridge()
}

fn signal_all(pids: &[Pid], signal: Signal) {
    for pid in pids {
        let _ = kill(*pid, signal);
    }
}

fn wait_gone(pids: &[Pid], timeout: Duration) -> bool {
    run::poll_until(Instant::now() + timeout, || {
        pids.iter().all(|pid| !procs::alive(*pid)).then_some(())
    })
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_resolve_to_absolute_paths() {
        assert!(tool("sh").is_absolute());
        assert_eq!(find_program("gw502-no-such-tool"), None);
        assert_eq!(tool("gw502-no-such-tool"), Path::new("gw502-no-such-tool"));
    }
}
