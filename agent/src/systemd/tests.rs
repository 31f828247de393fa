//! Tests of the systemd source. Against a real systemd on the system bus it is tested
//! in a lab host by `tests/tests/lab_scenarios.rs` (`agent_sources_on_a_real_host`).

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
