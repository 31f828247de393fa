//! The systemd evidence source: `systemctl status` for every watched unit,
//! read over D-Bus from `org.freedesktop.systemd1`.
//!
//! For each unit in [`Scope::units`] the source asks the manager for the unit
//! object (`LoadUnit`, or `GetUnit` when loading is refused) and reads the
//! unit and service properties in one `GetAll` call per interface, up to
//! 16 units in flight together. A unit that
//! does not exist is reported with load state `not-found`, which is evidence
//! in itself (a proxy pointing at a service that was never installed).
//!
//! Beside the proxy config and socket reads, [`SystemdSource::discover`] names the
//! cold-start candidates (failed, recently stopped and enabled-but-inactive
//! services, see [`candidates`]); they are read like any watched unit, with
//! their `ExecStart`, `WorkingDirectory` and `User`, and reported with role
//! `candidate`.
//!
//! The bus connection is opened on first use and dropped after any error, so
//! the next report reconnects (systemd and dbus restart on upgrades). The bus
//! socket lives under [`Roots::run`](crate::source::Roots), so tests and
//! containers can point it elsewhere.

mod bus;
pub mod candidates;

use std::path::Path;
use std::time::{Duration, Instant};

use gw502_proto::v1::{SystemdSection, UnitState};
use zbus::zvariant::OwnedObjectPath;

use self::bus::{ManagerProxy, PropertiesProxy, Props};
use self::candidates::Why;
use crate::source::{Scope, Source, Unavailable, UnitRole};

/// Units whose reads are in flight on the bus at once.
const UNITS_AT_ONCE: usize = 16;

/// Knobs of the systemd source.
#[derive(Debug, Clone)]
pub struct SystemdSettings {
    /// Bound on one collect (connect plus every unit).
    pub timeout: Duration,
    /// Most units read per report.
    pub max_units: usize,
}

impl Default for SystemdSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_units: 256,
        }
    }
}

/// How long the list of enabled unit files is kept. Listing them makes PID 1 read
/// every unit file's `[Install]` section and the symlinks that enable it, the
/// dearest call the agent makes of systemd, while what is enabled changes on
/// installs and `systemctl enable`, not from one report to the next.
const ENABLED_REFRESH: Duration = Duration::from_secs(60);

/// Reads unit state from systemd over the system bus.
#[derive(Debug, Default)]
pub struct SystemdSource {
    settings: SystemdSettings,
    connection: Option<zbus::Connection>,
    /// The enabled unit files, `(path, state)`, and when they were listed.
    enabled_files: Option<(Instant, Vec<(String, String)>)>,
}

impl SystemdSource {
    /// A source with the given settings; it connects on first collect.
    pub fn new(settings: SystemdSettings) -> Self {
        Self {
            settings,
            connection: None,
            enabled_files: None,
        }
    }

    async fn connect(&mut self, socket: &Path) -> Result<zbus::Connection, Unavailable> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        if !socket.exists() {
            return Err(Unavailable::because(format!(
                "no systemd: system bus socket {} not found",
                socket.display()
            )));
        }
        let address = format!("unix:path={}", socket.display());
        let connection = zbus::connection::Builder::address(address.as_str())
            .map(|b| b.method_timeout(self.settings.timeout))
            .map_err(|e| Unavailable::because(format!("system bus address {address}: {e}")))?
            .build()
            .await
            .map_err(|e| {
                Unavailable::because(format!(
                    "cannot connect to system bus {}: {e}",
                    socket.display()
                ))
            })?;
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    async fn read_all(&mut self, scope: &Scope) -> Result<Vec<UnitState>, Unavailable> {
        let socket = scope.roots.run.join("dbus/system_bus_socket");
        let connection = self.connect(&socket).await?;
        let manager = ManagerProxy::new(&connection)
            .await
            .map_err(|e| Unavailable::because(format!("systemd manager proxy: {e}")))?;
        // The units are asked for together: one after the other, each costs a round
        // trip through dbus-daemon and PID 1, and on a busy host every round trip waits
        // for a core three times over.
        let watched: Vec<(&String, &Vec<UnitRole>)> =
            scope.units.iter().take(self.settings.max_units).collect();
        let mut units = Vec::new();
        for chunk in watched.chunks(UNITS_AT_ONCE) {
            let reads = chunk
                .iter()
                .map(|(name, _)| read_named(&manager, &connection, name.as_str()));
            let reads = futures::future::join_all(reads).await;
            for ((_, roles), read) in chunk.iter().zip(reads) {
                let (state, service_type) = read?;
                units.extend(with_roles(state, &service_type, roles));
            }
        }
        Ok(units)
    }

    /// The cold-start candidates not yet in `scope` (see [`candidates`]):
    /// failed units, then `stopped` (units the journal saw stop, exit or
    /// fail, most recent first), then enabled services that are inactive.
    /// Empty when systemd cannot be asked; the collect that follows reports
    /// why.
    pub async fn discover(&mut self, scope: &Scope, stopped: &[String]) -> Vec<(String, Why)> {
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.ask_candidates(scope, stopped)).await {
            Ok(Ok(found)) => found,
            Ok(Err(reason)) => {
                tracing::debug!(%reason, "cannot list candidate units");
                Vec::new()
            }
            Err(_) => {
                tracing::debug!(
                    timeout_ms = timeout.as_millis(),
                    "listing candidate units timed out"
                );
                Vec::new()
            }
        }
    }

    async fn ask_candidates(
        &mut self,
        scope: &Scope,
        stopped: &[String],
    ) -> Result<Vec<(String, Why)>, Unavailable> {
        let own = std::fs::read_to_string(scope.roots.proc.join("self/cgroup"))
            .ok()
            .and_then(|c| candidates::own_unit(&c));
        let own = own.as_deref();
        let socket = scope.roots.run.join("dbus/system_bus_socket");
        let connection = self.connect(&socket).await?;
        let manager = ManagerProxy::new(&connection)
            .await
            .map_err(|e| Unavailable::because(format!("systemd manager proxy: {e}")))?;
        let failed: Vec<String> = manager
            .list_units_filtered(&["failed"])
            .await
            .map_err(|e| bus::unavailable(&e))?
            .into_iter()
            .map(|u| u.0)
            .collect();
        let stale = self
            .enabled_files
            .as_ref()
            .is_none_or(|(listed, _)| listed.elapsed() >= ENABLED_REFRESH);
        if stale {
            let files = manager
                .list_unit_files_by_patterns(&["enabled"], &["*.service"])
                .await
                .map_err(|e| bus::unavailable(&e))?;
            self.enabled_files = Some((Instant::now(), files));
        }
        let files = self.enabled_files.as_ref().map_or(&[][..], |(_, f)| f);
        let enabled = candidates::enabled_names(files, &scope.units, own);
        let enabled: Vec<&str> = enabled.iter().map(String::as_str).collect();
        let inactive: Vec<String> = if enabled.is_empty() {
            Vec::new()
        } else {
            manager
                .list_units_by_names(&enabled)
                .await
                .map_err(|e| bus::unavailable(&e))?
                .into_iter()
                .filter(|u| candidates::is_inactive(&u.3))
                .map(|u| u.0)
                .collect()
        };
        Ok(candidates::select(
            &failed,
            stopped,
            &inactive,
            &scope.units,
            own,
        ))
    }
}

impl Source for SystemdSource {
    type Section = SystemdSection;

    fn name(&self) -> &'static str {
        "systemd"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<SystemdSection, Unavailable> {
        let timeout = self.settings.timeout;
        let outcome = match tokio::time::timeout(timeout, self.read_all(scope)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Unavailable::because(format!(
                "systemd did not answer within {} ms",
                timeout.as_millis()
            ))),
        };
        match outcome {
            Ok(units) => Ok(SystemdSection {
                unavailable: String::new(),
                units,
            }),
            Err(reason) => {
                // Reconnect next time: the bus or systemd may have restarted.
                self.connection = None;
                Err(reason)
            }
        }
    }
}

fn not_found(name: &str) -> UnitState {
    UnitState {
        name: name.to_string(),
        load_state: "not-found".to_string(),
        active_state: "inactive".to_string(),
        sub_state: "dead".to_string(),
        ..UnitState::default()
    }
}

/// The state of the unit `name` and its service `Type`, `not-found` when systemd
/// knows no such unit.
async fn read_named(
    manager: &ManagerProxy<'_>,
    connection: &zbus::Connection,
    name: &str,
) -> Result<(UnitState, String), Unavailable> {
    match unit_path(manager, name).await? {
        Some(path) => read_unit(connection, name, path).await,
        None => Ok((not_found(name), String::new())),
    }
}

/// `state` with the roles it is watched in, `None` for a cold-start candidate not
/// worth reporting: not found, or a `oneshot` service (it runs a job and exits).
fn with_roles(mut state: UnitState, service_type: &str, roles: &[UnitRole]) -> Option<UnitState> {
    let only_candidate = roles == [UnitRole::Candidate];
    if only_candidate
        && (state.load_state == "not-found" || !candidates::keep_after_read(service_type))
    {
        return None;
    }
    state.roles = roles
        .iter()
        .map(|r| UnitRole::as_str(*r).to_string())
        .collect();
    Some(state)
}

/// The unit's object path, `None` when systemd knows no such unit.
async fn unit_path(
    manager: &ManagerProxy<'_>,
    name: &str,
) -> Result<Option<OwnedObjectPath>, Unavailable> {
    let loaded = manager.load_unit(name).await;
    let error = match loaded {
        Ok(path) => return Ok(Some(path)),
        Err(error) => error,
    };
    match bus::error_name(&error) {
        // Loading needs privileges we may lack; an already loaded unit is enough.
        Some(
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        ) => match manager.get_unit(name).await {
            Ok(path) => Ok(Some(path)),
            Err(e) if bus::is_unit_error(&e) => Ok(None),
            Err(e) => Err(bus::unavailable(&e)),
        },
        _ if bus::is_unit_error(&error) => Ok(None),
        _ => Err(bus::unavailable(&error)),
    }
}

/// The unit's state and, for a service, its `Type` (`simple`, `oneshot`, ...).
async fn read_unit(
    connection: &zbus::Connection,
    name: &str,
    path: OwnedObjectPath,
) -> Result<(UnitState, String), Unavailable> {
    let properties = PropertiesProxy::builder(connection)
        .path(path)
        .map_err(|e| bus::unavailable(&e))?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|e| bus::unavailable(&e))?;
    let unit = Props(
        properties
            .get_all("org.freedesktop.systemd1.Unit")
            .await
            .map_err(|e| bus::unavailable(&e))?,
    );
    let mut state = UnitState {
        name: name.to_string(),
        description: unit.string("Description"),
        load_state: unit.string("LoadState"),
        active_state: unit.string("ActiveState"),
        sub_state: unit.string("SubState"),
        state_change_ms: unit.micros_as_ms("StateChangeTimestamp"),
        active_enter_ms: unit.micros_as_ms("ActiveEnterTimestamp"),
        active_exit_ms: unit.micros_as_ms("ActiveExitTimestamp"),
        inactive_enter_ms: unit.micros_as_ms("InactiveEnterTimestamp"),
        ..UnitState::default()
    };
    let mut service_type = String::new();
    if let Some(interface) = bus::type_interface(name)
        && state.load_state == "loaded"
    {
        let typed = Props(properties.get_all(interface).await.unwrap_or_default());
        state.result = typed.string("Result");
        state.n_restarts = typed.u32("NRestarts");
        state.exec_main_code = typed.i32("ExecMainCode");
        state.exec_main_status = typed.i32("ExecMainStatus");
        state.main_pid = typed.u32("MainPID");
        state.exec_start = typed.exec_argv("ExecStart");
        state.working_directory = typed.string("WorkingDirectory");
        state.user = typed.string("User");
        service_type = typed.string("Type");
    }
    Ok((state, service_type))
}

#[cfg(test)]
mod tests;
