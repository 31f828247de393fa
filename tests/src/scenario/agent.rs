//! The gw502 agent on a lab host, deployed the way an operator deploys it: the shipped
//! unit `deploy/gw502-agent.service` unchanged (its user, its sandbox, its capabilities),
//! the shipped `deploy/gw502.sysusers` applied with `systemd-sysusers`, the binary at the
//! unit's `ExecStart` path and the config at the unit's config path. No lab host runs the
//! agent as root.
//!
//! The unit is written before boot but started only after [`install`] has copied the
//! workspace's freshly built `gw502-agent` into the host's own root: a binary seen
//! through the overlay's lower layer may be replaced by a concurrent build while the host
//! runs, a copy in the host's tmpfs cannot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::lab::{Host, HostSpec};

use super::collector::LabPki;

/// Where the agent binary goes inside a host: the shipped unit's `ExecStart` path.
pub const AGENT_BIN: &str = "/usr/bin/gw502-agent";
/// The agent's config inside a host.
pub const AGENT_CONFIG: &str = "/etc/gw502/agent.toml";
/// The agent's unit name.
pub const AGENT_UNIT: &str = "gw502-agent.service";
/// The lab agents' report interval.
pub const AGENT_INTERVAL: Duration = Duration::from_secs(2);

/// The user the shipped unit runs the agent as.
pub const AGENT_USER: &str = "gw502-agent";
/// The shipped unit, byte for byte.
pub const SHIPPED_UNIT: &str = include_str!("../../../deploy/gw502-agent.service");
/// The shipped sysusers entries, byte for byte.
pub const SHIPPED_SYSUSERS: &str = include_str!("../../../deploy/gw502.sysusers");
/// Where a package puts the unit and the sysusers file.
const UNIT_PATH: &str = "/usr/lib/systemd/system/gw502-agent.service";
const SYSUSERS_PATH: &str = "/usr/lib/sysusers.d/gw502.conf";

/// A built workspace binary: `target/<profile>/<name>` next to the running test binary.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/debug/deps/<test> -> target/debug
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary has no target dir")?;
    let bin = profile_dir.join(name);
    if !bin.is_file() {
        bail!(
            "{} is missing: build it first with `cargo build --workspace --bins`",
            bin.display()
        );
    }
    Ok(bin)
}

/// `spec` with the agent's config, certificates and unit added (the unit not enabled).
pub fn with_agent(spec: HostSpec, pki: &LabPki, collector: SocketAddr) -> anyhow::Result<HostSpec> {
    let [ca, cert, key] = pki.agent_pems(&spec.name)?;
    let config = format!(
        "host_id = \"{}\"\ncollector = \"https://{collector}\"\ninterval = \"{}s\"\n\
         full_snapshot_every = 5\nstate_dir = \"/var/lib/gw502-agent\"\nprobe_timeout = \"2s\"\n\
         [tls]\nca = \"/etc/gw502/pki/ca.crt\"\ncert = \"/etc/gw502/pki/agent.crt\"\n\
         key = \"/etc/gw502/pki/agent.key\"\n",
        spec.name,
        AGENT_INTERVAL.as_secs()
    );
    Ok(spec
        .file(AGENT_CONFIG, config, 0o640)
        .file("/etc/gw502/pki/ca.crt", ca, 0o644)
        .file("/etc/gw502/pki/agent.crt", cert, 0o644)
        .file("/etc/gw502/pki/agent.key", key, 0o640)
        .file(UNIT_PATH, SHIPPED_UNIT, 0o644)
        .file(SYSUSERS_PATH, SHIPPED_SYSUSERS, 0o644))
}

/// Copy the built agent into `host`, create its user, let it read its config and key
/// (`root:gw502-agent 0640`, as a package's postinst would) and start the shipped unit.
pub fn install(host: &Host) -> anyhow::Result<()> {
    prepare(host)?;
    host.systemctl(&["start", AGENT_UNIT])
}

/// Everything [`install`] does except starting the unit (cold starts start it later).
pub fn prepare(host: &Host) -> anyhow::Result<()> {
    copy_agent(host)?;
    let steps: [&[&str]; 3] = [
        &["systemd-sysusers"],
        &[
            "chgrp",
            AGENT_USER,
            AGENT_CONFIG,
            "/etc/gw502/pki/agent.key",
        ],
        &["systemctl", "daemon-reload"],
    ];
    host.exec_all(&steps)
}

/// Copy the built agent binary into `host`'s root.
pub fn copy_agent(host: &Host) -> anyhow::Result<()> {
    let bin = workspace_bin("gw502-agent")?;
    let dest = host.root().join(AGENT_BIN.trim_start_matches('/'));
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A fresh file, never a write through a lower-layer inode.
    let _ = std::fs::remove_file(&dest);
    std::fs::copy(&bin, &dest)
        .with_context(|| format!("copy {} into host {}", bin.display(), host.name()))?;
    Ok(())
}
