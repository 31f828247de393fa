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
use std::sync::Arc;

use gw502_daemon::settings::ConfigError;
use gw502_supervise::Supervisor;

use crate::config::Config;
use crate::deliveries::StoreDeliveryLog;
use crate::hub::{Hub, Live};
pub use crate::hub::{ReloadHook, ReloadHooks};
use crate::routing::Dispatcher;
use crate::store::StoreError;

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
    crate::sites::refresh_open(hub).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("collector.toml");
        std::fs::write(&path, text).expect("write");
        load(&path)
    }

    const BASE: &str = "listen = \"127.0.0.1:7502\"\n[tls]\nplaintext = true\n";

    #[test]
    fn a_bad_file_is_refused_with_every_problem() {
        let error = config(&format!(
            "bogus = 1\n{BASE}[evaluation]\nresolve_after = 0\n[[sites]]\nurl = \"ftp://x\"\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        for key in ["bogus", "evaluation.resolve_after", "sites[0].url"] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn keys_read_only_at_start_are_named() {
        let running = config(BASE).unwrap();
        let mut new = config(&format!(
            "lease_ttl = \"3s\"\n{BASE}[[sites]]\nurl = \"https://shop.example/\"\n"
        ))
        .unwrap();
        assert_eq!(needs_restart(&running, &new), ["lease_ttl"], "sites reload");
        new.listen = "127.0.0.1:7503".parse().unwrap();
        assert_eq!(needs_restart(&running, &new), ["listen", "lease_ttl"]);
        assert!(needs_restart(&running, &running.clone()).is_empty());
    }
}
