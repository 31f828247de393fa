//! Pure parsers of the Engine API's JSON: the container list
//! (`GET /containers/json?all=1`) and one container's inspect
//! (`GET /containers/{id}/json`), into the report's [`Container`].
//!
//! Only the fields gw502 needs are read, every one optional, so an engine
//! that leaves some out (Podman's compat API, older Docker) still parses.
//! Tested on real answers of Docker 20.10 in `agent/fixtures/docker/`.

use std::collections::BTreeMap;

use gw502_proto::v1::{Container, PublishedPort};
use serde::Deserialize;

/// Longest health-check output kept, in characters.
const MAX_HEALTH_CHARS: usize = 240;

/// One entry of the container list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListEntry {
    /// Full id.
    pub id: String,
    /// Names with a leading `/`.
    pub names: Vec<String>,
    /// Image as given.
    pub image: String,
    /// created, running, paused, restarting, removing, exited, dead.
    pub state: String,
    /// "Up 2 minutes (unhealthy)", "Exited (137) 3 seconds ago".
    pub status: String,
}

impl ListEntry {
    /// The first name without its `/`.
    pub fn name(&self) -> String {
        self.names
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default()
    }

    /// What must change for a stopped container's inspect to be read again:
    /// its state and the status up to the time part ("Exited (137)").
    pub fn settled_key(&self) -> String {
        let status = match self.status.find(')') {
            Some(end) => &self.status[..=end],
            None => self.status.split(' ').next().unwrap_or(""),
        };
        format!("{}|{}|{status}", self.id, self.state)
    }
}

/// Parses the list answer.
pub fn parse_list(body: &[u8]) -> Result<Vec<ListEntry>, serde_json::Error> {
    serde_json::from_slice(body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Inspect {
    id: String,
    name: String,
    restart_count: u32,
    config: InspectConfig,
    state: InspectState,
    host_config: HostConfig,
    network_settings: NetworkSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct InspectConfig {
    image: String,
    labels: Option<BTreeMap<String, String>>,
    tty: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct InspectState {
    status: String,
    #[serde(rename = "OOMKilled")]
    oom_killed: bool,
    pid: u32,
    exit_code: i32,
    error: String,
    started_at: String,
    finished_at: String,
    health: Option<Health>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Health {
    status: String,
    failing_streak: u32,
    log: Option<Vec<HealthRun>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HealthRun {
    exit_code: i32,
    output: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    network_mode: String,
    port_bindings: Option<BTreeMap<String, Option<Vec<Binding>>>>,
    memory: u64,
    restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicy {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkSettings {
    ports: Option<BTreeMap<String, Option<Vec<Binding>>>>,
    networks: Option<BTreeMap<String, Network>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Binding {
    host_ip: String,
    host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Network {
    #[serde(rename = "IPAddress")]
    ip_address: String,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: String,
}

/// What an inspect tells beyond the report's [`Container`]: where to read
/// the container's own sockets and how its log is framed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspected {
    /// The report entry.
    pub container: Container,
    /// The main process id on the host (0 when not running).
    pub pid: u32,
    /// A TTY container's log is raw text, not multiplexed frames.
    pub tty: bool,
}

/// Parses one inspect answer.
pub fn parse_inspect(body: &[u8]) -> Result<Inspected, serde_json::Error> {
    let mut i: Inspect = serde_json::from_slice(body)?;
    let labels = i.config.labels.unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    // A stopped container publishes nothing; its declared bindings still
    // say which host port it serves when it runs.
    let live = i.network_settings.ports.unwrap_or_default();
    let any_live = live
        .values()
        .any(|b| b.as_ref().is_some_and(|b| !b.is_empty()));
    let bindings = if any_live {
        live
    } else {
        i.host_config.port_bindings.take().unwrap_or_default()
    };
    let mut ports: Vec<PublishedPort> = bindings
        .into_iter()
        .flat_map(|(spec, bindings)| {
            let (port, protocol) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
            let container_port = port.parse().unwrap_or(0);
            let protocol = protocol.to_string();
            bindings
                .unwrap_or_default()
                .into_iter()
                .filter_map(move |b| {
                    Some(PublishedPort {
                        host_ip: b.host_ip,
                        host_port: b.host_port.parse().ok()?,
                        container_port,
                        protocol: protocol.clone(),
                    })
                })
        })
        .collect();
    ports.sort_by(|a, b| (a.host_port, &a.host_ip).cmp(&(b.host_port, &b.host_ip)));
    let mut addresses: Vec<String> = i
        .network_settings
        .networks
        .unwrap_or_default()
        .into_values()
        .flat_map(|n| [n.ip_address, n.global_ipv6_address])
        .filter(|a| !a.is_empty())
        .collect();
    addresses.sort();
    addresses.dedup();
    let health = i.state.health.unwrap_or_default();
    let health_log = health
        .log
        .unwrap_or_default()
        .last()
        .map(|run| {
            let last = run
                .output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            super::logs::sanitize(&format!("exit {}: {last}", run.exit_code), MAX_HEALTH_CHARS)
        })
        .unwrap_or_default();
    let container = Container {
        name: i.name.trim_start_matches('/').to_string(),
        id: i.id,
        image: i.config.image,
        state: i.state.status,
        restart_count: i.restart_count,
        exit_code: i.state.exit_code,
        oom_killed: i.state.oom_killed,
        error: super::logs::sanitize(&i.state.error, MAX_HEALTH_CHARS),
        started_at_ms: epoch_ms(&i.state.started_at),
        finished_at_ms: epoch_ms(&i.state.finished_at),
        health: health.status,
        failing_streak: health.failing_streak,
        health_log,
        restart_policy: i
            .host_config
            .restart_policy
            .map(|p| p.name)
            .unwrap_or_default(),
        memory_limit: i.host_config.memory,
        ports,
        addresses,
        network_mode: i.host_config.network_mode,
        compose_project: label("com.docker.compose.project"),
        compose_service: label("com.docker.compose.service"),
        ..Container::default()
    };
    Ok(Inspected {
        container,
        pid: i.state.pid,
        tty: i.config.tty,
    })
}

/// RFC 3339 time to epoch ms; 0 for Go's zero time or anything unreadable.
pub fn epoch_ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
        .filter(|&ms| ms > 0)
        .unwrap_or(0)
}
