//! Containers on a [`Host`], shaped the way the agent's containers source
//! reports them: the Docker Engine's `docker.service`, one entry per
//! container (state, restarts, exit code, OOM kill, health, published ports,
//! listeners inside its namespace) and, for a running container, the
//! `docker-proxy` listener of each published port mapped to it (`unit`
//! empty, `container` set), as `containers::annotate` leaves it.

use gw502_proto::v1::{Container, ContainersSection, Listener, PublishedPort};

use crate::host::Host;

/// How long before the failure a running container started.
const STARTED_BEFORE_T0: i64 = 600_000;

impl Host {
    /// The Docker Engine on this host (`docker.service` running, an empty
    /// containers section).
    pub fn docker(self) -> Self {
        let mut h = self.unit("docker.service", "active", "running", "listener");
        h.report
            .containers
            .get_or_insert_with(|| ContainersSection {
                engine: "docker 20.10.24+dfsg1".into(),
                socket: "/run/docker.sock".into(),
                ..ContainersSection::default()
            });
        h
    }

    /// A container `name` in `state` (running, restarting, exited, ...),
    /// publishing `host_ip:host_port` to its port `container_port`, whose
    /// app listens on `0.0.0.0:container_port` inside. `edit` adjusts the
    /// entry (restart count, OOM kill, health, listeners) before a running
    /// container's published port gets its docker-proxy listener.
    pub fn container(
        mut self,
        name: &str,
        state: &str,
        host_ip: &str,
        host_port: u32,
        container_port: u32,
        edit: impl FnOnce(&mut Container),
    ) -> Self {
        self = self.docker();
        let n = self
            .report
            .containers
            .as_ref()
            .map_or(0, |s| s.containers.len());
        let running = state == "running";
        let mut c = Container {
            name: name.into(),
            id: format!("{:064x}", n + 1),
            image: format!("registry.example/{name}:1"),
            state: state.into(),
            restart_policy: "unless-stopped".into(),
            ports: vec![PublishedPort {
                host_ip: host_ip.into(),
                host_port,
                container_port,
                protocol: "tcp".into(),
            }],
            addresses: if running {
                vec![format!("172.17.0.{}", n + 2)]
            } else {
                Vec::new()
            },
            network_mode: "bridge".into(),
            started_at_ms: self.clock.t0 - STARTED_BEFORE_T0,
            finished_at_ms: if running { 0 } else { self.clock.t0 },
            listens: if running {
                vec![format!("0.0.0.0:{container_port}")]
            } else {
                Vec::new()
            },
            ..Container::default()
        };
        edit(&mut c);
        if c.state == "running" {
            for p in &c.ports {
                let l = Listener {
                    family: if p.host_ip.contains(':') {
                        "tcp6"
                    } else {
                        "tcp4"
                    }
                    .into(),
                    address: if p.host_ip.is_empty() {
                        "0.0.0.0".into()
                    } else {
                        p.host_ip.clone()
                    },
                    port: p.host_port,
                    process: "docker-proxy".into(),
                    container: c.name.clone(),
                    backlog: 4096,
                    ..Listener::default()
                };
                self.report
                    .sockets
                    .get_or_insert_default()
                    .listeners
                    .push(l);
            }
        }
        if let Some(s) = self.report.containers.as_mut() {
            s.containers.push(c);
        }
        self
    }
}
