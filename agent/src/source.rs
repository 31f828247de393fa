//! The one small trait every evidence source implements, and the scope that
//! earlier sources hand to later ones.
//!
//! A report is gathered in a fixed order: proxy config first (it names the
//! upstream targets, log files and site names), then sockets (they name the
//! units that own listeners), then systemd, journal, probes, DNS and the proxy
//! logs. Each source reads what it needs from [`Scope`] and returns its proto
//! section, or [`Unavailable`] with a reason. A failing source never stops the
//! others: the collector sees the reason in the section's `unavailable` field.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use gw502_proto::v1::{Listener, ProxyConfig};

/// Why a source could not produce evidence this time, in words for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unavailable: {0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    /// Wraps any displayable cause as a reason.
    pub fn because(reason: impl std::fmt::Display) -> Self {
        Self(reason.to_string())
    }
}

/// Filesystem roots the agent reads, overridable so tests and containers can
/// point them elsewhere (like vector's `PROCFS_ROOT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Usually `/proc`.
    pub proc: PathBuf,
    /// Usually `/sys`.
    pub sys: PathBuf,
    /// Usually `/run`.
    pub run: PathBuf,
    /// Usually `/etc`.
    pub etc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            run: PathBuf::from("/run"),
            etc: PathBuf::from("/etc"),
        }
    }
}

impl Roots {
    /// Resolves an absolute host path (e.g. `/run/php/fpm.sock`) under the
    /// matching root, so a test that moves `/run` moves socket paths too.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        for (prefix, root) in [
            ("/proc", &self.proc),
            ("/sys", &self.sys),
            ("/run", &self.run),
            ("/etc", &self.etc),
        ] {
            if let Ok(rest) = path.strip_prefix(prefix) {
                return root.join(rest);
            }
        }
        path.to_path_buf()
    }
}

/// Why a unit is watched. A unit can have several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitRole {
    /// Runs a reverse proxy (nginx, haproxy, apache2, caddy).
    Proxy,
    /// Owns a listener that a proxy config targets.
    Upstream,
    /// Owns some listener on the host.
    Listener,
    /// Named in the agent config.
    Configured,
    /// Failed, enabled but inactive, or recently stopped: maybe the upstream
    /// of a target the agent never saw listening (see `systemd::candidates`).
    Candidate,
}

impl UnitRole {
    /// The word used on the wire (`UnitState.roles`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Upstream => "upstream",
            Self::Listener => "listener",
            Self::Configured => "configured",
            Self::Candidate => "candidate",
        }
    }
}

/// What earlier sources learned, guiding later ones in the same report.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Filesystem roots.
    pub roots: Roots,
    /// Proxies found by the proxy-config source, with their targets and log files.
    pub proxies: Vec<ProxyConfig>,
    /// Listeners found by the sockets source, with owning units.
    pub listeners: Vec<Listener>,
    /// Units to watch and why, filled from the config, proxies and listeners.
    pub units: BTreeMap<String, Vec<UnitRole>>,
    /// Site names (server_name) the proxies serve, for DNS.
    pub site_names: Vec<String>,
}

impl Scope {
    /// Marks `unit` as watched for `role`.
    pub fn watch(&mut self, unit: impl Into<String>, role: UnitRole) {
        let roles = self.units.entry(unit.into()).or_default();
        if !roles.contains(&role) {
            roles.push(role);
            roles.sort();
        }
    }
}

/// Units once seen owning a listener or serving a proxy target. They stay
/// watched after they stop: the sockets source cannot name the owner of a
/// socket that is gone, yet "the app that listened on 127.0.0.1:8080 is now
/// inactive", and its exit events in the journal, are the evidence behind
/// `service_down` and `crash_loop`. Units that turn out not to exist are
/// forgotten, and at most `max` are remembered.
#[derive(Debug, Clone, Default)]
pub struct UnitMemory {
    remembered: BTreeMap<String, Vec<UnitRole>>,
    max: usize,
}

impl UnitMemory {
    /// Remembers at most `max` units.
    pub fn new(max: usize) -> Self {
        Self {
            remembered: BTreeMap::new(),
            max,
        }
    }

    /// Remembers this report's listener and upstream units, then puts every
    /// remembered unit back into the scope.
    pub fn extend(&mut self, scope: &mut Scope) {
        for (name, roles) in &scope.units {
            let sticky = roles
                .iter()
                .filter(|r| matches!(r, UnitRole::Upstream | UnitRole::Listener));
            if name.ends_with(".scope")
                || (self.remembered.len() >= self.max && !self.remembered.contains_key(name))
            {
                continue;
            }
            for &role in sticky {
                let slot = self.remembered.entry(name.clone()).or_default();
                if !slot.contains(&role) {
                    slot.push(role);
                    slot.sort();
                }
            }
        }
        for (name, roles) in &self.remembered {
            for &role in roles {
                scope.watch(name.clone(), role);
            }
        }
    }

    /// Forgets a unit systemd does not know (uninstalled, or a transient unit).
    pub fn forget(&mut self, unit: &str) {
        self.remembered.remove(unit);
    }
}

/// One evidence source. Implementations keep whatever state they need between
/// reports (journal cursor, log offsets, last config hash) in `self`.
pub trait Source: Send {
    /// The proto section this source fills.
    type Section: Send;

    /// Short name for logs and metrics: `systemd`, `sockets`, `journal`, ...
    fn name(&self) -> &'static str;

    /// Gathers evidence. Returning `Err` marks the section unavailable with the
    /// reason; it must never panic or block the runtime.
    fn collect(
        &mut self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Self::Section, Unavailable>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_moves_known_roots_only() {
        let roots = Roots {
            run: PathBuf::from("/tmp/x/run"),
            ..Roots::default()
        };
        assert_eq!(
            roots.host_path(Path::new("/run/php/fpm.sock")),
            PathBuf::from("/tmp/x/run/php/fpm.sock")
        );
        assert_eq!(
            roots.host_path(Path::new("/var/log/nginx/error.log")),
            PathBuf::from("/var/log/nginx/error.log")
        );
    }

    #[test]
    fn units_that_owned_a_listener_stay_watched_after_they_stop() {
        let mut memory = UnitMemory::new(10);
        let mut running = Scope::default();
        running.watch("nginx.service", UnitRole::Proxy);
        running.watch("app.service", UnitRole::Listener);
        running.watch("app.service", UnitRole::Upstream);
        running.watch("init.scope", UnitRole::Listener);
        memory.extend(&mut running);
        assert_eq!(running.units.len(), 3);
        // The app stopped: its socket is gone, so the sockets source no longer names it.
        let mut stopped = Scope::default();
        stopped.watch("nginx.service", UnitRole::Proxy);
        memory.extend(&mut stopped);
        let names: Vec<&str> = stopped.units.keys().map(String::as_str).collect();
        assert_eq!(names, ["app.service", "nginx.service"]);
        assert_eq!(
            stopped.units["app.service"],
            vec![UnitRole::Upstream, UnitRole::Listener]
        );
        memory.forget("app.service");
        let mut later = Scope::default();
        memory.extend(&mut later);
        assert!(later.units.is_empty());
    }

    #[test]
    fn unit_memory_is_bounded() {
        let mut memory = UnitMemory::new(2);
        let mut scope = Scope::default();
        for unit in ["a.service", "b.service", "c.service"] {
            scope.watch(unit, UnitRole::Listener);
        }
        memory.extend(&mut scope);
        let mut later = Scope::default();
        memory.extend(&mut later);
        assert_eq!(later.units.len(), 2);
    }

    #[test]
    fn watch_keeps_roles_unique_and_sorted() {
        let mut scope = Scope::default();
        scope.watch("app.service", UnitRole::Listener);
        scope.watch("app.service", UnitRole::Upstream);
        scope.watch("app.service", UnitRole::Listener);
        assert_eq!(
            scope.units["app.service"],
            vec![UnitRole::Upstream, UnitRole::Listener]
        );
    }
}
