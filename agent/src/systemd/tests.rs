//! Tests of the systemd source. The live test needs a real systemd on the
//! system bus, so it is ignored by default; run it inside an nspawn host
//! (see agent/fixtures/systemd/README.md):
//! `nsenter -t <leader> -a <test binary> systemd::tests::live --ignored`.

use std::path::PathBuf;

use super::*;
use crate::source::Roots;

fn scope_with_run(run: PathBuf) -> Scope {
    let mut scope = Scope {
        roots: Roots {
            run,
            ..Roots::default()
        },
        ..Scope::default()
    };
    scope.watch("nginx.service", UnitRole::Proxy);
    scope
}

#[tokio::test]
async fn missing_bus_socket_is_unavailable_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let scope = scope_with_run(dir.path().to_path_buf());
    let err = SystemdSource::new(SystemdSettings::default())
        .collect(&scope)
        .await
        .unwrap_err();
    let expected = format!(
        "no systemd: system bus socket {}/dbus/system_bus_socket not found",
        dir.path().display()
    );
    assert_eq!(err.0, expected);
}

#[tokio::test]
async fn dead_bus_socket_is_unavailable_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dbus")).unwrap();
    // A socket file nobody listens on any more: connect is refused.
    drop(
        std::os::unix::net::UnixListener::bind(dir.path().join("dbus/system_bus_socket")).unwrap(),
    );
    let scope = scope_with_run(dir.path().to_path_buf());
    let mut source = SystemdSource::new(SystemdSettings::default());
    let err = source.collect(&scope).await.unwrap_err();
    assert!(err.0.starts_with("cannot connect to system bus"), "{err}");
    assert!(source.connection.is_none());
    assert!(source.collect(&scope).await.is_err());
}

#[tokio::test]
#[ignore = "needs a real systemd on the system bus (run inside an nspawn host)"]
async fn live_systemd_reports_units_and_not_found() {
    let mut scope = Scope::default();
    scope.watch("systemd-journald.service", UnitRole::Configured);
    scope.watch("gw502-no-such-unit.service", UnitRole::Upstream);
    let mut source = SystemdSource::new(SystemdSettings::default());
    let section = source.collect(&scope).await.unwrap();
    println!("{section:#?}");
    let by_name = |name: &str| section.units.iter().find(|u| u.name == name).unwrap();
    let journald = by_name("systemd-journald.service");
    assert_eq!(journald.load_state, "loaded");
    assert_eq!(journald.active_state, "active");
    assert_eq!(journald.sub_state, "running");
    assert_eq!(journald.result, "success");
    assert!(journald.main_pid > 0);
    assert!(journald.active_enter_ms > 1_600_000_000_000);
    assert!(!journald.description.is_empty());
    assert_eq!(journald.roles, vec!["configured"]);
    let missing = by_name("gw502-no-such-unit.service");
    assert_eq!(missing.load_state, "not-found");
    assert_eq!(missing.roles, vec!["upstream"]);
    // The connection is kept and reused.
    assert!(source.connection.is_some());
    let again = source.collect(&scope).await.unwrap();
    assert_eq!(again.units.len(), 2);
    // A unit given by the runner (e.g. a crash-looping one) can be checked too.
    if let Ok(unit) = std::env::var("GW502_LIVE_UNIT") {
        let mut scope = Scope::default();
        scope.watch(unit, UnitRole::Configured);
        println!("{:#?}", source.collect(&scope).await.unwrap());
    }
}
