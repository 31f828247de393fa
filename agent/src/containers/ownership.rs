//! Which container is behind a host listener.
//!
//! A published port (`-p 127.0.0.1:8080:8000`) is a listener of
//! `docker-proxy`, a process in `docker.service`: `ss -tlnp` names the
//! engine, not the app. Its command line says where it forwards
//! (`-host-ip 127.0.0.1 -host-port 8080 -container-ip 172.17.0.2
//! -container-port 8000`), which names the container by its address. A
//! process of a host-network container owns its listener itself; its cgroup
//! path carries the container id (`/docker/<id>` with the cgroupfs driver,
//! `docker-<id>.scope` or `libpod-<id>.scope` with the systemd driver).
//! Either way the listener gets the container's name and loses the engine's
//! unit, so no rule ever takes `docker.service` for the app.

use std::net::IpAddr;
use std::path::Path;

use gw502_proto::v1::{Container, ContainersSection, SocketsSection};

/// Where one docker-proxy process forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `-host-ip`.
    pub host_ip: String,
    /// `-host-port`.
    pub host_port: u32,
    /// `-container-ip`.
    pub container_ip: String,
    /// `-container-port`.
    pub container_port: u32,
}

/// Reads a docker-proxy command line (`/proc/PID/cmdline`, NUL-separated).
pub fn parse_docker_proxy(cmdline: &[u8]) -> Option<Forward> {
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag || a == &format!("-{flag}"))
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let forward = Forward {
        host_ip: value("-host-ip").unwrap_or_default(),
        host_port: value("-host-port")?.parse().ok()?,
        container_ip: value("-container-ip")?,
        container_port: value("-container-port")?.parse().ok()?,
    };
    forward.container_ip.parse::<IpAddr>().ok()?;
    Some(forward)
}

/// The container id a `/proc/PID/cgroup` text places the process in.
pub fn container_id_in_cgroup(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .flat_map(|path| path.split('/'))
        .find_map(|part| {
            let id = part
                .strip_prefix("docker-")
                .or_else(|| part.strip_prefix("libpod-"))
                .and_then(|p| p.strip_suffix(".scope"))
                .unwrap_or(part);
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
        })
}

/// The container a docker-proxy forwards to: by its address and port, or,
/// when the engine no longer reports the address, by the published host port.
pub fn forwarded_to<'a>(forward: &Forward, containers: &'a [Container]) -> Option<&'a Container> {
    containers
        .iter()
        .find(|c| {
            c.addresses.contains(&forward.container_ip)
                && c.ports
                    .iter()
                    .any(|p| p.container_port == forward.container_port)
        })
        .or_else(|| {
            containers.iter().find(|c| {
                c.ports.iter().any(|p| {
                    p.host_port == forward.host_port && p.container_port == forward.container_port
                })
            })
        })
}

/// Names the container behind every listener that has one, reading the
/// command line or cgroup of the owning processes under `proc_root`.
pub fn annotate(sockets: &mut SocketsSection, section: &ContainersSection, proc_root: &Path) {
    if section.containers.is_empty() {
        return;
    }
    for listener in &mut sockets.listeners {
        if listener.pid == 0 {
            continue;
        }
        let base = proc_root.join(listener.pid.to_string());
        let container = if listener.process == "docker-proxy" {
            std::fs::read(base.join("cmdline"))
                .ok()
                .and_then(|c| parse_docker_proxy(&c))
                .and_then(|f| forwarded_to(&f, &section.containers))
        } else if listener.unit.is_empty()
            || listener.unit.starts_with("docker-")
            || listener.unit.starts_with("libpod-")
        {
            std::fs::read_to_string(base.join("cgroup"))
                .ok()
                .and_then(|t| container_id_in_cgroup(&t))
                .and_then(|id| section.containers.iter().find(|c| c.id == id))
        } else {
            None
        };
        if let Some(c) = container {
            listener.container.clone_from(&c.name);
            listener.unit.clear();
        }
    }
}
