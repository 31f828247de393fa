//! One booted lab host: its overlay root, its `systemd-nspawn` process and its leader.
//!
//! A host lives in `/var/tmp/gw502-lab/<name>`: `t` is a tmpfs holding the overlay's upper
//! and work dirs, `r` is the overlay of the machine's `/` that the container boots from,
//! and `boot.log` is nspawn's console. Commands run inside through `nsenter` into the
//! container's PID 1. A `Host` tears itself down when dropped (clean halt first, then
//! SIGKILL, then unmount), so a failed boot or a panicking test leaves nothing behind.

use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::spec::{HostSpec, shadowed_inside};
use super::{cgroup, image, procs, rootfs, run, sweep};

/// How long a host may take from nspawn start to `is-system-running` saying it is up.
/// A host boots in a few seconds on a quiet machine; 24 booting at once beside builds on
/// 2 cores took over 45 s (a whole matrix batch was lost to it), and a host that is
/// really stuck costs only this long to notice.
const BOOT_DEADLINE: Duration = Duration::from_secs(120);
/// Default bound on a command run inside a host.
const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// After SIGKILL, how long to wait for nspawn to go.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Environment for commands inside a host: a clean login-like PATH, nothing from the test.
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A lab host booted with systemd in its own namespaces on the lab bridge.
#[derive(Debug)]
pub struct Host {
    name: String,
    ip: Ipv4Addr,
    dir: PathBuf,
    root: PathBuf,
    nspawn: Option<Child>,
    leader: Option<Pid>,
    started: Option<Instant>,
    boot_time: Duration,
    mounted: bool,
    syscalls: Vec<String>,
}

impl Host {
    /// Mount the overlay root for `spec` under `lab_dir` and fill it in.
    pub(super) fn prepare(
        lab_dir: &Path,
        spec: &HostSpec,
        bridge_ip: Ipv4Addr,
    ) -> anyhow::Result<Host> {
        let dir = lab_dir.join(&spec.name);
        let mut host = Host {
            name: spec.name.clone(),
            ip: spec.ip(),
            root: dir.join("r"),
            dir,
            nspawn: None,
            leader: None,
            started: None,
            boot_time: Duration::ZERO,
            mounted: false,
            syscalls: spec.syscalls.clone(),
        };
        let scratch = host.dir.join("t");
        for d in [&scratch, &host.root] {
            fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        host.mounted = true;
        mount(
            Some("tmpfs"),
            &scratch,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0755"),
        )
        .with_context(|| format!("mount tmpfs on {}", scratch.display()))?;
        for d in ["upper", "work"] {
            fs::create_dir(scratch.join(d))?;
        }
        let options = format!(
            "lowerdir=/,upperdir={0}/upper,workdir={0}/work",
            scratch.display()
        );
        mount(
            Some("overlay"),
            &host.root,
            Some("overlay"),
            MsFlags::empty(),
            Some(options.as_str()),
        )
        .with_context(|| format!("mount overlay on {}", host.root.display()))?;
        image::prepare(&host.root, spec, bridge_ip)?;
        Ok(host)
    }

    /// Start `systemd-nspawn` booting the root, attached to `bridge`.
    pub(super) fn spawn(&mut self, bridge: &str) -> anyhow::Result<()> {
        let log = File::create(self.boot_log()).context("create boot log")?;
        let cgroups = cgroup::create(&self.name)?;
        // `sh` moves itself into the host's cgroups, then execs nspawn (same pid).
        let child = Command::new(sweep::tool("sh"))
            .args(["-c", cgroup::ENTER_SCRIPT, "gw502-lab-enter"])
            .arg(cgroups.len().to_string())
            .args(&cgroups)
            .arg(sweep::tool("systemd-nspawn"))
            .arg("-D")
            .arg(&self.root)
            .args(["--register=no", "--keep-unit"])
            // The host keeps its own /etc/localtime: nspawn's default (`auto`) replaces a
            // symlinked one with the machine's, which made every non-UTC host UTC.
            .arg("--timezone=off")
            .arg(format!("--network-bridge={bridge}"))
            .args(
                (!self.syscalls.is_empty())
                    .then(|| format!("--system-call-filter={}", self.syscalls.join(" "))),
            )
            .args(["-M", &self.name, "-b"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("spawn systemd-nspawn")?;
        self.started = Some(Instant::now());
        self.nspawn = Some(child);
        Ok(())
    }

    /// Wait for the container's PID 1, then for `systemctl is-system-running --wait`.
    pub(super) fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = self.started.unwrap_or_else(Instant::now);
        let deadline = started + BOOT_DEADLINE;
        let Some(nspawn_pid) = self.nspawn_pid() else {
            bail!("host {} was not spawned", self.name);
        };
        let leader = run::poll_until(deadline, || {
            if self.nspawn_exited() {
                return Some(None);
            }
            procs::find_leader(nspawn_pid).map(Some)
        })
        .flatten();
        let Some(leader) = leader else {
            return Err(self.boot_failure("has no container init"));
        };
        self.leader = Some(leader);
        let state = run::poll_until(deadline, || {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let out = self
                .exec_within(&["systemctl", "is-system-running", "--wait"], remaining)
                .ok()?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            // Until PID 1 has set up /run/systemd the answer is "offline" or nothing.
            let booting = ["", "offline", "initializing", "starting"];
            (!booting.contains(&state.as_str())).then_some(state)
        });
        match state.as_deref() {
            Some("running") => {}
            Some("degraded") => {
                let failed = self.exec(&["systemctl", "--failed", "--no-legend", "--plain"]);
                let failed = failed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                let failed = failed.unwrap_or_default();
                tracing::warn!(host = %self.name, failed = %failed, "lab host booted degraded");
                // Tests often run without a subscriber: say it on stderr too.
                eprintln!(
                    "lab host {} booted degraded, failed units:\n{failed}",
                    self.name
                );
            }
            Some(other) => return Err(self.boot_failure(&format!("is {other} after boot"))),
            None => {
                let what = format!("did not finish booting within {BOOT_DEADLINE:?}");
                return Err(self.boot_failure(&what));
            }
        }
        self.boot_time = started.elapsed();
        Ok(())
    }

    /// The host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's address on the lab bridge.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The overlay root on the machine (the host's `/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// From nspawn start until the host reported running.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// The container's PID 1 as seen from the machine.
    pub fn leader(&self) -> Option<i32> {
        self.leader.map(Pid::as_raw)
    }

    /// Run `args` inside the host (all its namespaces), bounded to 60 s.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.exec_within(args, EXEC_TIMEOUT)
    }

    /// Run `args` inside the host, killing it after `timeout`.
    pub fn exec_within(&self, args: &[&str], timeout: Duration) -> anyhow::Result<Output> {
        let Some(leader) = self.leader else {
            bail!("host {} has not booted", self.name);
        };
        let mut command = Command::new(sweep::tool("nsenter"));
        command
            .args(["-t", &leader.to_string(), "-a", "--"])
            .args(args)
            .env_clear()
            .env("PATH", HOST_PATH)
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8")
            .current_dir("/");
        run::output_within(&mut command, timeout).with_context(|| format!("in host {}", self.name))
    }

    /// Run `args` inside the host; a failure is an error carrying its stderr.
    pub fn exec_ok(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = self.exec(args)?;
        if !out.status.success() {
            bail!(
                "host {}: {} failed ({}): {}",
                self.name,
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Run each command in turn inside the host, stopping at the first failure.
    pub fn exec_all(&self, steps: &[&[&str]]) -> anyhow::Result<()> {
        steps.iter().try_for_each(|step| self.exec_ok(step))
    }

    /// Run `systemctl args...` inside the host; an error carries its stderr.
    pub fn systemctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec!["systemctl"];
        full.extend_from_slice(args);
        self.exec_ok(&full)
    }

    /// Write a file into the host's root (visible inside at once). Paths under `/run`,
    /// `/tmp`, `/proc`, `/sys` and `/dev` are refused: the host has its own mounts there
    /// (write those with [`Host::exec`]).
    pub fn write_file(&self, path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
        if shadowed_inside(path) {
            bail!(
                "host {}: {} is on a mount of the host's own, not in its root",
                self.name,
                path.display()
            );
        }
        rootfs::write_file(&self.root, path, contents, mode)
            .with_context(|| format!("write {} in host {}", path.display(), self.name))
    }

    /// `journalctl -u unit -o short-iso` inside the host, for failure diagnostics.
    pub fn journal(&self, unit: &str) -> String {
        match self.exec(&["journalctl", "--no-pager", "-u", unit, "-o", "short-iso"]) {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(error) => format!("journal of {unit} unavailable: {error:#}"),
        }
    }

    /// The last lines of nspawn's console log, without colour codes.
    pub fn boot_log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.boot_log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        strip_ansi(&all[all.len().saturating_sub(lines)..].join("\n"))
    }

    fn boot_log(&self) -> PathBuf {
        self.dir.join("boot.log")
    }

    /// An error saying what went wrong at boot, with nspawn's exit and the boot log tail.
    fn boot_failure(&mut self, what: &str) -> anyhow::Error {
        let exit = self
            .nspawn
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        let exit = exit.map_or("nspawn still running".to_owned(), |s| {
            format!("nspawn exited {s}")
        });
        anyhow::anyhow!(
            "host {} {what} ({exit}); boot log tail:\n{}",
            self.name,
            self.boot_log_tail(30)
        )
    }

    fn nspawn_pid(&self) -> Option<Pid> {
        let pid = i32::try_from(self.nspawn.as_ref()?.id()).ok()?;
        Some(Pid::from_raw(pid))
    }

    fn nspawn_exited(&mut self) -> bool {
        self.nspawn
            .as_mut()
            .is_none_or(|child| !matches!(child.try_wait(), Ok(None)))
    }

    /// Ask the container to halt (SIGTERM to nspawn); returns at once.
    pub(super) fn halt(&mut self) {
        if let Some(pid) = self.nspawn_pid().filter(|_| !self.nspawn_exited()) {
            let _ = kill(pid, Signal::SIGTERM);
        }
    }

    /// Wait for the halt until `deadline`, kill what is left, unmount and remove the dir.
    pub(super) fn finish_teardown(&mut self, deadline: Instant) {
        if let Some(mut child) = self.nspawn.take() {
            let timeout = deadline.saturating_duration_since(Instant::now());
            if run::wait_within(&mut child, timeout).is_none() {
                tracing::warn!(host = %self.name, "lab host did not halt in time, killing it");
                if let Some(leader) = self.leader.filter(|l| procs::alive(*l)) {
                    let _ = kill(leader, Signal::SIGKILL);
                }
                let _ = child.kill();
                if run::wait_within(&mut child, KILL_GRACE).is_none() {
                    tracing::error!(host = %self.name, pid = child.id(), "systemd-nspawn survived SIGKILL");
                }
            }
        }
        self.leader = None;
        cgroup::remove(&self.name);
        if self.mounted {
            for point in [self.root.clone(), self.dir.join("t")] {
                unmount(&point);
            }
            self.mounted = false;
            if procs::lab_mounts(&self.dir).is_empty() {
                let _ = fs::remove_dir_all(&self.dir);
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.halt();
        let deadline = Instant::now() + super::HALT_DEADLINE;
        self.finish_teardown(deadline);
    }
}

/// `text` without ANSI CSI sequences (`ESC [ ... letter`), as systemd colours its console.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for end in chars.by_ref() {
                if end.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Unmount `point`, lazily if it is busy; a path that is not mounted is fine.
pub(super) fn unmount(point: &Path) {
    if umount2(point, MntFlags::empty()).is_err()
        && procs::lab_mounts(point.parent().unwrap_or(point)).contains(&point.to_path_buf())
        && let Err(error) = umount2(point, MntFlags::MNT_DETACH)
    {
        tracing::error!(point = %point.display(), %error, "cannot unmount lab mount");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_colours_are_stripped() {
        // A line of a real boot log of a lab host.
        let line = "[\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m - Multi-User System.";
        assert_eq!(
            strip_ansi(line),
            "[  OK  ] Reached target multi-user.target - Multi-User System."
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
