//! Config reload on SIGHUP, without dropping a connection.
//!
//! `main` reads and validates the file again ([`load`]); a file with
//! problems is refused as a whole, every problem logged with its key, and
//! the running config stays. A good file puts its sites and routing in
//! force ([`apply`]): a new [`Live`] is swapped in, with new Alertmanager
//! keep-alive lanes (the old ones stop), the configured sites are written to
//! the store, and the sender and evaluator use the new routing from their
//! next round. Keys that only take effect at start (listener, database, TLS
//! identity, id, intervals) are named in a warning. Other parts that reload
//! (the certificate revocation list) register a [`ReloadHook`], called
//! with each config put in force.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gw502_daemon::settings::ConfigError;
use gw502_supervise::Supervisor;

use crate::config::Config;
use crate::deliveries::StoreDeliveryLog;
use crate::hub::{Hub, Live};
use crate::routing::Dispatcher;
use crate::store::StoreError;

/// Called with every config put in force by a reload; returns the problems
/// it met (logged, each with the hook's name). A hook that fails keeps its
/// own previous state.
pub type ReloadHook = Box<dyn Fn(&Config) -> Result<(), Vec<String>> + Send + Sync>;

/// The hooks run on reload, in registration order.
#[derive(Default)]
pub struct ReloadHooks {
    hooks: Mutex<Vec<(&'static str, ReloadHook)>>,
}

impl std::fmt::Debug for ReloadHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.lock().iter().map(|(name, _)| *name).collect();
        f.debug_struct("ReloadHooks")
            .field("hooks", &names)
            .finish()
    }
}

impl ReloadHooks {
    /// Adds a hook called `name` (used in logs).
    pub fn register(&self, name: &'static str, hook: ReloadHook) {
        self.lock().push((name, hook));
    }

    /// Runs every hook; returns `(hook, problem)` for each problem reported.
    pub fn run(&self, config: &Config) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for (name, hook) in self.lock().iter() {
            if let Err(found) = hook(config) {
                problems.extend(found.into_iter().map(|p| (*name, p)));
            }
        }
        problems
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, ReloadHook)>> {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads and validates `path` for a reload. On problems, logs every one
/// with its key and returns them; the caller keeps the running config.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    Config::load(path).inspect_err(|error| {
        for problem in &error.problems {
            tracing::error!(path = %error.path.display(), key = %problem.key, problem = %problem.message, "config problem");
        }
        tracing::error!(
            path = %path.display(),
            problems = error.problems.len(),
            "config reload refused, the running config stays"
        );
    })
}

/// Puts the sites and routing of `config` in force on a running collector.
pub async fn apply(hub: &Hub, config: Config, supervisor: &Supervisor) -> Result<(), StoreError> {
    let restart = needs_restart(&hub.config, &config);
    if !restart.is_empty() {
        tracing::warn!(keys = ?restart, "changed keys take effect only after a restart");
    }
    let router = Arc::new(config.router.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut closing = hub.closing.clone();
    let dispatcher = Dispatcher::spawn(
        router.clone(),
        Arc::new(StoreDeliveryLog::new(hub.store.clone())),
        async move {
            // When the Live holding `stop` is replaced, or the collector stops.
            tokio::select! {
                _ = stopped => {}
                _ = closing.wait_for(|c| *c) => {}
            }
        },
        supervisor,
    );
    let old = hub.replace_live(Live {
        sites: config.sites.clone(),
        router,
        dispatcher,
        lanes: Some(stop),
    });
    drop(old);
    crate::sites::publish_configured(hub).await?;
    crate::server::refresh_open(hub).await?;
    // New sites get their lease now rather than at the next round.
    crate::leases::claim_all(hub, hub.config.lease_ttl).await?;
    for (hook, problem) in hub.reload_hooks.run(&config) {
        tracing::error!(hook, problem = %problem, "reload hook failed");
    }
    let live = hub.live();
    tracing::info!(
        sites = live.sites.len(),
        receivers = live.router.receivers.len(),
        "config reloaded"
    );
    hub.wake.notify_one();
    Ok(())
}

/// The keys of `new` that differ from `running` and are read only at start.
fn needs_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut check = |key, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    check("listen", running.listen != new.listen);
    check("database", running.database != new.database);
    check("id", running.id != new.id);
    check("tls", running.tls != new.tls);
    check(
        "metrics_listen",
        running.metrics_listen != new.metrics_listen,
    );
    check(
        "probe_interval",
        running.probe_interval != new.probe_interval,
    );
    check(
        "evaluation.interval",
        running.evaluation_interval != new.evaluation_interval,
    );
    check("evaluation.window", running.window != new.window);
    check(
        "evaluation.resolve_after",
        running.resolve_after != new.resolve_after,
    );
    check("retention", running.retention != new.retention);
    check("lease_ttl", running.lease_ttl != new.lease_ttl);
    check(
        "shutdown_grace",
        running.shutdown_grace != new.shutdown_grace,
    );
    keys
}
