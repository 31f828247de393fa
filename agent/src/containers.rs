//! The containers evidence source: what `docker ps -a`, `docker inspect` and
//! `docker logs` would tell an operator, read from the Docker Engine API over
//! its unix socket (GET calls only, never the CLI; Podman's
//! Docker-compatible service answers the same calls).
//!
//! One report costs one list call plus one inspect per container that can
//! change: running, restarting and paused containers are inspected every
//! time, a stopped one only when its list entry changes (its inspect is kept
//! otherwise). For each container the report carries state, restart count,
//! exit code, OOM kill, health (with the last check's output), published
//! ports, its addresses, compose labels, the TCP listeners inside its own
//! network namespace (`/proc/<pid>/net/tcp`, the bind-mismatch evidence),
//! (read again only when the container's process changes, else at most
//! every [`NETNS_REFRESH`] and for at most [`MAX_NETNS_READS`] containers a
//! report: the kernel answers a namespace's `net/tcp` by walking the whole
//! host's TCP hash, 25 ms with 100,000 established connections),
//! the host ports it published earlier, and its recent warning and error log
//! lines, fetched `since` the previous fetch and kept for a few minutes so
//! an unchanged section stays unchanged. [`ownership`] then maps the
//! engine's listeners (`docker-proxy`, host-network containers) to their
//! container.
//!
//! No socket at the default path means no engine: the section is left out.
//! A configured socket that is missing, or any socket the agent may not
//! read, makes the section `unavailable` with the reason.

pub mod engine;
pub mod logs;
pub mod model;
pub mod ownership;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gw502_proto::v1::{Container, ContainerLogLine, ContainersSection};

pub use self::engine::{Engine, EngineError};
pub use self::ownership::annotate;
use crate::sockets::parse_proc_net_tcp;
use crate::source::{Scope, Source, Unavailable};

/// The engine socket read when none is configured.
pub const DEFAULT_SOCKET: &str = "/run/docker.sock";

/// How long a container's namespace listeners are kept before a re-read.
pub const NETNS_REFRESH: Duration = Duration::from_secs(60);
/// The most namespace listener reads per report (the oldest go first).
pub const MAX_NETNS_READS: usize = 4;
/// How long after its container starts an app may still be binding: until then a
/// reading with no listener is read again at the next report, not kept for
/// [`NETNS_REFRESH`] (a container recreated with the app bound to loopback was read
/// before the app bound, and its bind mismatch stayed hidden for a minute).
pub const NETNS_SETTLING: Duration = Duration::from_secs(120);

/// Knobs of the containers source (`[containers]` in agent.toml).
#[derive(Debug, Clone)]
pub struct ContainersSettings {
    /// Off: the section is never sent.
    pub enabled: bool,
    /// The engine's API socket.
    pub socket: PathBuf,
    /// Whether `socket` was set in the config (then a missing socket is a gap).
    pub explicit: bool,
    /// Bound on one API call.
    pub timeout: Duration,
    /// Most containers reported (running ones first).
    pub max_containers: usize,
    /// Log lines kept per container.
    pub max_log_lines: usize,
    /// How long a log line stays in the report.
    pub log_keep: Duration,
    /// Most containers whose log is fetched per report.
    pub max_log_fetches: usize,
}

impl Default for ContainersSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            socket: PathBuf::from(DEFAULT_SOCKET),
            explicit: false,
            timeout: Duration::from_secs(3),
            max_containers: 50,
            max_log_lines: 5,
            log_keep: Duration::from_secs(300),
            max_log_fetches: 10,
        }
    }
}

/// Reads the engine, keeping what makes the next report cheap.
#[derive(Debug, Default)]
pub struct ContainersSource {
    settings: ContainersSettings,
    /// Inspects of stopped containers, by [`model::ListEntry::settled_key`].
    settled: HashMap<String, model::Inspected>,
    /// Host ports each container name has published, bounded.
    published: HashMap<String, BTreeSet<u32>>,
    /// Recent notable log lines and the last fetch time (epoch s), by id.
    logs: HashMap<String, (Vec<ContainerLogLine>, i64)>,
    /// Namespace listeners by container id: (pid, read at epoch s, listeners).
    netns: HashMap<String, (u32, i64, Vec<String>)>,
}

impl ContainersSource {
    /// A source with the given settings.
    pub fn new(settings: ContainersSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Whether a section is sent at all: enabled, and the socket exists or
    /// was configured (a configured one that is missing is reported).
    pub fn active(&self, scope: &Scope) -> bool {
        self.settings.enabled && (self.settings.explicit || self.socket(scope).exists())
    }

    fn socket(&self, scope: &Scope) -> PathBuf {
        scope.roots.host_path(&self.settings.socket)
    }

    async fn read(&mut self, scope: &Scope) -> Result<ContainersSection, EngineError> {
        let socket = self.socket(scope);
        let engine = Engine::new(&socket, self.settings.timeout, 4 << 20);
        let version: serde_json::Value =
            serde_json::from_slice(&engine.get("/version").await?).unwrap_or_default();
        let mut list =
            model::parse_list(&engine.get("/containers/json?all=1").await?).map_err(|e| {
                EngineError::Malformed {
                    request: "/containers/json".into(),
                    reason: e.to_string(),
                }
            })?;
        list.retain(|e| engine::is_container_id(&e.id));
        // Live containers first, then the most recently created (the list's order).
        list.sort_by_key(|e| !matches!(e.state.as_str(), "running" | "restarting" | "paused"));
        let dropped = list.len().saturating_sub(self.settings.max_containers);
        list.truncate(self.settings.max_containers);

        let now_s = gw502_vocab::clock::now_ms() / 1000;
        let mut settled = HashMap::new();
        let mut containers = Vec::new();
        let mut fetches = 0;
        let mut netns_reads = 0;
        for entry in &list {
            let key = entry.settled_key();
            let live = matches!(entry.state.as_str(), "running" | "restarting" | "paused");
            let inspected = match self.settled.remove(&key).filter(|_| !live) {
                Some(cached) => cached,
                None => match engine.get(&format!("/containers/{}/json", entry.id)).await {
                    Ok(body) => match model::parse_inspect(&body) {
                        Ok(i) => i,
                        Err(error) => {
                            tracing::debug!(id = %entry.id, %error, "unreadable inspect");
                            continue;
                        }
                    },
                    // Removed between the list and the inspect.
                    Err(EngineError::Status { status: 404, .. }) => continue,
                    Err(e) => return Err(e),
                },
            };
            if !live {
                settled.insert(key, inspected.clone());
            }
            let mut c = inspected.container.clone();
            if c.network_mode != "host" && inspected.pid > 0 {
                let settling = now_s * 1000 - c.started_at_ms < NETNS_SETTLING.as_millis() as i64;
                c.listens = self.listeners(
                    &scope.roots.proc,
                    (&c.id, inspected.pid, settling),
                    now_s,
                    &mut netns_reads,
                );
            }
            self.remember_ports(&mut c);
            let wants_log = fetches < self.settings.max_log_fetches
                && (live
                    || self.logs.contains_key(&c.id)
                    || c.finished_at_ms / 1000 >= now_s - 300);
            if wants_log {
                fetches += 1;
                self.fetch_log(&engine, &inspected, now_s).await;
            }
            c.logs = self.recent_log(&c.id, now_s);
            containers.push(c);
        }
        self.settled = settled;
        let ids: BTreeSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
        self.logs.retain(|id, _| ids.contains(id.as_str()));
        self.netns.retain(|id, _| ids.contains(id.as_str()));
        Ok(ContainersSection {
            unavailable: String::new(),
            engine: engine_words(&version),
            socket: self.settings.socket.display().to_string(),
            containers,
            dropped: u32::try_from(dropped).unwrap_or(u32::MAX),
        })
    }

    /// The listeners in the namespace of container `id` (process `pid`):
    /// kept while the process is the same and younger than [`NETNS_REFRESH`],
    /// else read again if this report has reads left ([`MAX_NETNS_READS`]).
    /// An empty reading of a container still `settling` ([`NETNS_SETTLING`]) is
    /// not kept.
    fn listeners(
        &mut self,
        proc_root: &Path,
        (id, pid, settling): (&str, u32, bool),
        now_s: i64,
        reads: &mut usize,
    ) -> Vec<String> {
        let refresh = i64::try_from(NETNS_REFRESH.as_secs()).unwrap_or(i64::MAX);
        match self.netns.get(id) {
            Some((p, at, kept))
                if *p == pid && now_s - at < refresh && !(settling && kept.is_empty()) =>
            {
                return kept.clone();
            }
            Some((_, _, kept)) if *reads >= MAX_NETNS_READS => return kept.clone(),
            None if *reads >= MAX_NETNS_READS => return Vec::new(),
            _ => {}
        }
        *reads += 1;
        let fresh = netns_listeners(proc_root, pid);
        self.netns
            .insert(id.to_string(), (pid, now_s, fresh.clone()));
        fresh
    }

    /// Records the container's current host ports and fills `past_host_ports`.
    fn remember_ports(&mut self, c: &mut Container) {
        let current: BTreeSet<u32> = c.ports.iter().map(|p| p.host_port).collect();
        if self.published.len() >= 256 && !self.published.contains_key(&c.name) {
            return;
        }
        let seen = self.published.entry(c.name.clone()).or_default();
        c.past_host_ports = seen.difference(&current).copied().collect();
        seen.extend(current);
        while seen.len() > 8 {
            seen.pop_first();
        }
    }

    async fn fetch_log(&mut self, engine: &Engine, i: &model::Inspected, now_s: i64) {
        let id = &i.container.id;
        let since = self.logs.get(id).map_or(now_s - 300, |(_, at)| *at);
        let request =
            format!("/containers/{id}/logs?stdout=1&stderr=1&timestamps=1&tail=200&since={since}");
        match engine.get(&request).await {
            Ok(body) => {
                let fresh = logs::notable(&body, i.tty, self.settings.max_log_lines);
                let slot = self.logs.entry(id.clone()).or_default();
                for line in fresh {
                    if !slot.0.contains(&line) {
                        slot.0.push(line);
                    }
                }
                slot.1 = now_s;
            }
            Err(error) => tracing::debug!(%id, %error, "container log unreadable"),
        }
    }

    fn recent_log(&mut self, id: &str, now_s: i64) -> Vec<ContainerLogLine> {
        let keep_ms = i64::try_from(self.settings.log_keep.as_millis()).unwrap_or(i64::MAX);
        let Some((lines, _)) = self.logs.get_mut(id) else {
            return Vec::new();
        };
        lines.retain(|l| l.at_ms == 0 || l.at_ms >= now_s * 1000 - keep_ms);
        let skip = lines.len().saturating_sub(self.settings.max_log_lines);
        lines.drain(..skip);
        lines.clone()
    }
}

/// `docker 20.10.24+dfsg1` or `podman 4.3.1` from a `GET /version` answer
/// (Podman names itself in a component).
pub fn engine_words(version: &serde_json::Value) -> String {
    let podman = version
        .get("Components")
        .and_then(|c| c.as_array())
        .and_then(|c| {
            c.iter()
                .find(|x| x.get("Name").and_then(|n| n.as_str()) == Some("Podman Engine"))
        });
    let (name, number) = match podman {
        Some(p) => ("podman", p.get("Version")),
        None => ("docker", version.get("Version")),
    };
    let number = number.and_then(|v| v.as_str()).unwrap_or("");
    logs::sanitize(format!("{name} {number}").trim(), 64)
}

/// TCP listeners in the network namespace of `pid`, as `addr:port`.
pub fn netns_listeners(proc_root: &Path, pid: u32) -> Vec<String> {
    let mut out: Vec<String> = [("tcp", false), ("tcp6", true)]
        .into_iter()
        .flat_map(|(table, v6)| {
            let text = std::fs::read_to_string(proc_root.join(format!("{pid}/net/{table}")))
                .unwrap_or_default();
            parse_proc_net_tcp(&text, v6)
        })
        .filter(|s| s.is_listener())
        .map(|s| std::net::SocketAddr::new(s.local, s.local_port).to_string())
        .collect();
    out.sort();
    out.dedup();
    out.truncate(32);
    out
}

impl Source for ContainersSource {
    type Section = ContainersSection;

    fn name(&self) -> &'static str {
        "containers"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ContainersSection, Unavailable> {
        self.read(scope).await.map_err(Unavailable::because)
    }
}

#[cfg(test)]
mod tests;
