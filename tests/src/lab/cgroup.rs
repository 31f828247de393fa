//! A cgroup of its own for every lab host.
//!
//! With `--keep-unit` and no systemd on the machine, `systemd-nspawn` puts the container
//! under its own cgroup (`payload/`). Two hosts started from the same cgroup would share
//! that subtree, and their systemds would fight over `payload/system.slice/<unit>`: units
//! fail with `219/CGROUP` and stopping a unit on one host touches the other. So each
//! nspawn is started inside `gw502-lab/<host>` of the `name=systemd` and unified
//! hierarchies (or of the single v2 hierarchy). The trees also make a killed run's
//! processes easy to find and are removed at teardown.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Directory under each hierarchy root holding one cgroup per host.
const LAB_GROUP: &str = "gw502-lab";

/// Shell program (constant; values arrive as arguments) that moves itself into the
/// cgroups given as `count dir...` and then execs the remaining arguments.
pub const ENTER_SCRIPT: &str = r#"n=$1; shift
while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; n=$((n-1)); done
exec "$@""#;

/// The hierarchies the harness separates hosts in.
fn hierarchy_roots() -> Vec<PathBuf> {
    let legacy = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
        .map(PathBuf::from)
        .into_iter()
        .filter(|root| root.join("cgroup.procs").exists())
        .collect::<Vec<_>>();
    if !legacy.is_empty() {
        return legacy;
    }
    let unified = PathBuf::from("/sys/fs/cgroup");
    if unified.join("cgroup.procs").exists() {
        vec![unified]
    } else {
        Vec::new()
    }
}

/// Create (fresh) the cgroups of host `name`; returns the directories to enter.
pub fn create(name: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for root in hierarchy_roots() {
        let dir = root.join(LAB_GROUP).join(name);
        remove_tree(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create cgroup {}", dir.display()))?;
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Remove the cgroups of host `name` (they must be empty of processes by now).
pub fn remove(name: &str) {
    for root in hierarchy_roots() {
        remove_tree(&root.join(LAB_GROUP).join(name));
    }
}

/// Processes left in any lab cgroup (of every host).
pub fn lab_processes() -> Vec<Pid> {
    let mut pids = Vec::new();
    for root in hierarchy_roots() {
        collect_procs(&root.join(LAB_GROUP), &mut pids);
    }
    pids.sort_unstable_by_key(|p| p.as_raw());
    pids.dedup();
    pids
}

/// SIGKILL every process in the lab cgroups; returns them, for the sweep to wait on.
pub fn kill_all() -> Vec<Pid> {
    let pids = lab_processes();
    for pid in &pids {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    pids
}

/// Remove every lab cgroup (all must be empty of processes by now).
pub fn remove_all() {
    for root in hierarchy_roots() {
        remove_tree(&root.join(LAB_GROUP));
    }
}

fn collect_procs(dir: &Path, pids: &mut Vec<Pid>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .filter(|pid: &i32| *pid > 0)
                .map(Pid::from_raw),
        );
    }
    for child in child_dirs(dir) {
        collect_procs(&child, pids);
    }
}

fn child_dirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// rmdir a cgroup tree bottom-up (cgroupfs only allows rmdir, not unlinking its files).
fn remove_tree(dir: &Path) {
    for child in child_dirs(dir) {
        remove_tree(&child);
    }
    match fs::remove_dir(dir) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(cgroup = %dir.display(), %error, "cannot remove lab cgroup");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn enter_script_passes_arguments_through() {
        // With zero cgroups the script only execs its arguments, unchanged.
        let out = Command::new("sh")
            .args([
                "-c",
                ENTER_SCRIPT,
                "enter",
                "0",
                "printf",
                "%s|",
                "a b",
                "$HOME;x",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|$HOME;x|");
    }

    #[test]
    fn enter_script_fails_on_missing_cgroup() {
        let out = Command::new("sh")
            .args([
                "-c",
                ENTER_SCRIPT,
                "enter",
                "1",
                "/nonexistent-cgroup",
                "true",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125));
    }
}
