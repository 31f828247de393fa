//! The gw502 agent on a lab host: its config, certificates and unit, and the installed
//! binary.
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

/// Where the agent binary goes inside a host.
pub const AGENT_BIN: &str = "/usr/local/bin/gw502-agent";
/// The agent's config inside a host.
pub const AGENT_CONFIG: &str = "/etc/gw502/agent.toml";
/// The agent's unit name.
pub const AGENT_UNIT: &str = "gw502-agent.service";
/// The lab agents' report interval.
pub const AGENT_INTERVAL: Duration = Duration::from_secs(2);

const UNIT: &str = "[Unit]\nDescription=gw502 agent (lab)\nAfter=network.target\n\n\
[Service]\nExecStart=/usr/local/bin/gw502-agent -c /etc/gw502/agent.toml run\n\
Environment=RUST_LOG=info\nRestart=always\nRestartSec=1\n";

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
        .file(AGENT_CONFIG, config, 0o600)
        .file("/etc/gw502/pki/ca.crt", ca, 0o644)
        .file("/etc/gw502/pki/agent.crt", cert, 0o644)
        .file("/etc/gw502/pki/agent.key", key, 0o600)
        .file(format!("/etc/systemd/system/{AGENT_UNIT}"), UNIT, 0o644))
}

/// Copy the built agent into `host` and start its unit.
pub fn install(host: &Host) -> anyhow::Result<()> {
    copy_agent(host)?;
    host.systemctl(&["start", AGENT_UNIT])
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
