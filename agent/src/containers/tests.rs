//! Tests of the containers source on real Engine API answers
//! (`agent/fixtures/docker/`, see its README), and of the unix-socket client
//! against a socket that replays them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gw502_proto::v1::{Listener, SocketsSection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::model::{parse_inspect, parse_list};
use super::ownership::{container_id_in_cgroup, forwarded_to, parse_docker_proxy};
use super::*;
use crate::source::Roots;

fn fixture(name: &str) -> Vec<u8> {
    fixture_of("docker", name)
}

fn fixture_of(engine: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(engine)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn inspect(name: &str) -> model::Inspected {
    parse_inspect(&fixture(&format!("inspect-{name}.json"))).unwrap()
}

#[test]
fn list_names_states_and_settled_keys() {
    let list = parse_list(&fixture("containers-list.json")).unwrap();
    let states: Vec<(String, &str)> = list.iter().map(|e| (e.name(), e.state.as_str())).collect();
    assert!(
        states.contains(&("shop-loop".into(), "restarting")),
        "{states:?}"
    );
    assert!(
        states.contains(&("shop-oom".into(), "exited")),
        "{states:?}"
    );
    let oom = list.iter().find(|e| e.name() == "shop-oom").unwrap();
    assert!(
        oom.settled_key().ends_with("|exited|Exited (137)"),
        "{}",
        oom.settled_key()
    );
}

#[test]
fn a_running_container_with_a_published_port() {
    let i = inspect("shop-web");
    let c = &i.container;
    assert_eq!(c.name, "shop-web");
    assert_eq!(c.state, "running");
    assert_eq!(c.image, "gw502/empty:1");
    assert_eq!(
        (c.compose_project.as_str(), c.compose_service.as_str()),
        ("shop", "web")
    );
    assert_eq!(c.ports.len(), 1);
    let p = &c.ports[0];
    assert_eq!(
        (
            p.host_ip.as_str(),
            p.host_port,
            p.container_port,
            p.protocol.as_str()
        ),
        ("127.0.0.1", 8080, 8000, "tcp")
    );
    assert_eq!(c.addresses, ["172.31.77.2"]);
    assert!(i.pid > 0 && !i.tty);
    assert!(c.started_at_ms > 1_700_000_000_000);
    assert_eq!(c.finished_at_ms, 0, "Go's zero time is no time");
}

#[test]
fn restart_loop_oom_stop_and_health_are_read() {
    let looping = inspect("shop-loop").container;
    assert_eq!(looping.state, "restarting");
    assert!(looping.restart_count >= 3, "{}", looping.restart_count);
    assert_eq!(looping.exit_code, 3);
    assert_eq!(looping.restart_policy, "always");
    // Between lives it publishes nothing: the declared binding names its port.
    assert_eq!(looping.ports[0].host_port, 8082);

    let oom = inspect("shop-oom").container;
    assert!(oom.oom_killed);
    assert_eq!((oom.state.as_str(), oom.exit_code), ("exited", 137));
    assert_eq!(oom.memory_limit, 48 << 20);

    let stopped = inspect("shop-stopped").container;
    assert!(!stopped.oom_killed);
    assert_eq!((stopped.state.as_str(), stopped.exit_code), ("exited", 137));
    assert!(stopped.finished_at_ms > 0);
    assert_eq!(stopped.ports[0].host_port, 8085);

    let sick = inspect("shop-sick").container;
    assert_eq!(sick.health, "unhealthy");
    assert!(sick.failing_streak >= 2);
    assert_eq!(
        sick.health_log,
        "exit 1: urllib.error.HTTPError: HTTP Error 500: Internal Server Error"
    );
}

#[test]
fn logs_are_demultiplexed_and_only_warnings_and_errors_kept() {
    let lines = logs::notable(&fixture("logs-shop-loop.raw"), false, 5);
    assert!(!lines.is_empty());
    assert!(lines.len() <= 5);
    for l in &lines {
        assert_eq!(l.stream, "stderr", "{l:?}");
        assert!(
            l.line.starts_with("ERROR: cannot read /app/config.yml"),
            "{l:?}"
        );
        assert!(l.at_ms > 1_700_000_000_000);
    }
    // The start-up line on stdout is not a warning.
    let all = logs::demux(&fixture("logs-shop-loop.raw"), false);
    assert!(
        all.iter()
            .any(|(s, l)| *s == "stdout" && l.contains("app starting"))
    );
    let sick = logs::notable(&fixture("logs-shop-sick.raw"), false, 5);
    assert!(
        sick.iter()
            .any(|l| l.line.contains("database pool exhausted")),
        "{sick:?}"
    );
}

#[test]
fn hostile_log_lines_are_escaped_and_capped() {
    let mut body = vec![2, 0, 0, 0];
    let payload = format!("ERROR \x1b[31mred\x1b[0m {}\n", "x".repeat(400));
    body.extend((payload.len() as u32).to_be_bytes());
    body.extend(payload.as_bytes());
    let lines = logs::notable(&body, false, 5);
    assert_eq!(lines.len(), 1);
    assert!(!lines[0].line.contains('\x1b'));
    assert!(lines[0].line.contains("\\u{1b}[31mred"));
    assert_eq!(lines[0].line.chars().count(), logs::MAX_LINE_CHARS + 1);
    // A TTY container's log is raw text.
    let raw = logs::notable(b"ok\nWARN low disk\n", true, 5);
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].line, "WARN low disk");
}

#[test]
fn docker_proxy_command_line_names_the_container() {
    let forward = parse_docker_proxy(&fixture("docker-proxy-8081.cmdline")).unwrap();
    assert_eq!(forward.host_port, 8081);
    assert_eq!(forward.container_ip, "172.31.77.3");
    assert_eq!(forward.container_port, 8000);
    let containers: Vec<Container> = ["shop-web", "shop-bind", "shop-sick"]
        .into_iter()
        .map(|n| inspect(n).container)
        .collect();
    assert_eq!(
        forwarded_to(&forward, &containers).unwrap().name,
        "shop-bind"
    );
    assert!(parse_docker_proxy(b"/usr/sbin/nginx\0-g\0daemon off;").is_none());
}

#[test]
fn cgroup_paths_of_both_drivers_give_the_id() {
    let id = "5e67cc9b4bd7a7865bf6224be3ae64be53464a8a5704635245741b8f75a9bc3c";
    let cgroupfs = format!("9:name=systemd:/docker/{id}\n8:pids:/docker/{id}\n");
    assert_eq!(container_id_in_cgroup(&cgroupfs).as_deref(), Some(id));
    let systemd = format!("0::/system.slice/docker-{id}.scope\n");
    assert_eq!(container_id_in_cgroup(&systemd).as_deref(), Some(id));
    let podman = format!("0::/machine.slice/libpod-{id}.scope/container\n");
    assert_eq!(container_id_in_cgroup(&podman).as_deref(), Some(id));
    assert_eq!(
        container_id_in_cgroup("0::/system.slice/nginx.service\n"),
        None
    );
}

#[test]
fn annotate_moves_a_docker_proxy_listener_from_docker_service_to_its_container() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("4242")).unwrap();
    std::fs::write(
        dir.path().join("4242/cmdline"),
        fixture("docker-proxy-8081.cmdline"),
    )
    .unwrap();
    let mut sockets = SocketsSection {
        listeners: vec![
            Listener {
                family: "tcp4".into(),
                address: "127.0.0.1".into(),
                port: 8081,
                pid: 4242,
                process: "docker-proxy".into(),
                unit: "docker.service".into(),
                ..Listener::default()
            },
            Listener {
                family: "tcp4".into(),
                address: "127.0.0.1".into(),
                port: 9100,
                pid: 4243,
                process: "node_exporter".into(),
                unit: "prometheus-node-exporter.service".into(),
                ..Listener::default()
            },
        ],
        ..SocketsSection::default()
    };
    let section = ContainersSection {
        containers: vec![
            inspect("shop-web").container,
            inspect("shop-bind").container,
        ],
        ..ContainersSection::default()
    };
    annotate(&mut sockets, &section, dir.path());
    assert_eq!(sockets.listeners[0].container, "shop-bind");
    assert_eq!(sockets.listeners[0].unit, "");
    assert_eq!(sockets.listeners[1].container, "");
    assert_eq!(
        sockets.listeners[1].unit,
        "prometheus-node-exporter.service"
    );
}

#[test]
fn listeners_inside_the_container_namespace_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("77/net")).unwrap();
    std::fs::write(
        dir.path().join("77/net/tcp"),
        fixture("netns-shop-bind.tcp"),
    )
    .unwrap();
    assert_eq!(netns_listeners(dir.path(), 77), ["127.0.0.1:8000"]);
    assert!(netns_listeners(dir.path(), 78).is_empty());
}

#[test]
fn namespace_listeners_are_reread_on_a_new_process_or_after_the_refresh_only() {
    let dir = tempfile::tempdir().unwrap();
    for pid in ["77", "79"] {
        std::fs::create_dir_all(dir.path().join(pid).join("net")).unwrap();
        std::fs::write(
            dir.path().join(pid).join("net/tcp"),
            fixture("netns-shop-bind.tcp"),
        )
        .unwrap();
    }
    let mut source = ContainersSource::default();
    let mut reads = 0;
    assert_eq!(
        source.listeners(dir.path(), ("a", 77, false), 1000, &mut reads),
        ["127.0.0.1:8000"]
    );
    // The table changes; the same process within the refresh keeps the old reading.
    std::fs::write(dir.path().join("77/net/tcp"), "").unwrap();
    assert_eq!(
        source.listeners(dir.path(), ("a", 77, false), 1030, &mut reads),
        ["127.0.0.1:8000"]
    );
    assert_eq!(reads, 1);
    assert!(
        source
            .listeners(dir.path(), ("a", 77, false), 1060, &mut reads)
            .is_empty()
    );
    assert_eq!(
        source.listeners(dir.path(), ("a", 79, false), 1061, &mut reads),
        ["127.0.0.1:8000"]
    );
    assert_eq!(reads, 3);
    // Out of reads for this report: a container never read gets nothing yet.
    let mut spent = MAX_NETNS_READS;
    assert!(
        source
            .listeners(dir.path(), ("b", 79, false), 1061, &mut spent)
            .is_empty()
    );
    assert_eq!(spent, MAX_NETNS_READS);
}

/// A container whose app has not bound yet right after it started is read again at
/// the next report; once it has settled, an empty reading is kept like any other.
#[test]
fn an_empty_reading_of_a_starting_container_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("77/net")).unwrap();
    std::fs::write(dir.path().join("77/net/tcp"), "").unwrap();
    let mut source = ContainersSource::default();
    let mut reads = 0;
    assert!(
        source
            .listeners(dir.path(), ("a", 77, true), 1000, &mut reads)
            .is_empty()
    );
    // The app binds loopback a moment later.
    std::fs::write(
        dir.path().join("77/net/tcp"),
        fixture("netns-shop-bind.tcp"),
    )
    .unwrap();
    assert_eq!(
        source.listeners(dir.path(), ("a", 77, true), 1002, &mut reads),
        ["127.0.0.1:8000"]
    );
    assert_eq!(reads, 2);
    // Settled with nothing bound: kept until the refresh.
    std::fs::write(dir.path().join("77/net/tcp"), "").unwrap();
    let mut source = ContainersSource::default();
    let mut reads = 0;
    source.listeners(dir.path(), ("b", 77, false), 2000, &mut reads);
    source.listeners(dir.path(), ("b", 77, false), 2002, &mut reads);
    assert_eq!(reads, 1);
}

#[test]
fn error_answers_carry_the_engine_message() {
    let raw = b"HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 43\r\n\r\n{\"message\":\"No such container: shop-gone\"}\n";
    match engine::parse_response("/containers/shop-gone/json", raw) {
        Err(EngineError::Status {
            status: 404,
            message,
            ..
        }) => {
            assert_eq!(message, "No such container: shop-gone")
        }
        other => panic!("{other:?}"),
    }
    assert!(engine::parse_response("/x", b"garbage").is_err());
    assert!(engine::is_container_id("5e67cc9b4bd7"));
    assert!(!engine::is_container_id("../../version"));
}

/// Serves recorded answers on a unix socket: the request path picks the fixture.
async fn fake_engine(dir: &Path) -> PathBuf {
    fake_engine_of(dir, "docker").await
}

/// [`fake_engine`] with the answers of `engine` (`docker` or `podman`).
async fn fake_engine_of(dir: &Path, engine: &'static str) -> PathBuf {
    let socket = dir.join(format!("{engine}.sock"));
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = vec![0; 4096];
            let n = stream.read(&mut head).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&head[..n]).to_string();
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            let (from, name) = if path == "/version" {
                (engine, "version.json".to_string())
            } else if path.starts_with("/containers/json") {
                (engine, "containers-list.json".to_string())
            } else if path.contains("/logs") {
                ("docker", "logs-shop-loop.raw".to_string())
            } else {
                let id = path.split('/').nth(2).unwrap_or("");
                let list = parse_list(&fixture_of(engine, "containers-list.json")).unwrap();
                let name = list
                    .iter()
                    .find(|e| e.id == id)
                    .map(|e| e.name())
                    .unwrap_or_default();
                (engine, format!("inspect-{name}.json"))
            };
            let body = fixture_of(from, &name);
            let head = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
    });
    socket
}

fn scope() -> Scope {
    Scope {
        roots: Roots::default(),
        ..Scope::default()
    }
}

#[tokio::test]
async fn a_report_over_the_socket_and_a_cheaper_second_one() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fake_engine(dir.path()).await;
    let mut source = ContainersSource::new(ContainersSettings {
        socket,
        explicit: true,
        ..ContainersSettings::default()
    });
    let section = source.collect(&scope()).await.unwrap();
    assert_eq!(section.engine, "docker 20.10.24+dfsg1");
    assert_eq!(section.containers.len(), 6);
    let names: Vec<&str> = section.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        &names[..3]
            .iter()
            .filter(|n| ["shop-web", "shop-bind", "shop-sick", "shop-loop"].contains(n))
            .count(),
        &3,
        "live first: {names:?}"
    );
    let oom = section
        .containers
        .iter()
        .find(|c| c.name == "shop-oom")
        .unwrap();
    assert!(oom.oom_killed);
    assert_eq!(
        source.settled.len(),
        2,
        "stopped containers are kept for the next report"
    );
    let again = source.collect(&scope()).await.unwrap();
    assert_eq!(again.containers.len(), 6);
    assert_eq!(source.settled.len(), 2);
}

#[tokio::test]
async fn podman_answers_the_same_calls() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fake_engine_of(dir.path(), "podman").await;
    let mut source = ContainersSource::new(ContainersSettings {
        socket,
        explicit: true,
        ..ContainersSettings::default()
    });
    let section = source.collect(&scope()).await.unwrap();
    assert_eq!(section.engine, "podman 4.3.1");
    let by_name = |n: &str| section.containers.iter().find(|c| c.name == n).unwrap();
    assert_eq!(by_name("pod-web").state, "created");
    assert_eq!(by_name("pod-web").compose_project, "shop");
    assert_eq!(by_name("pod-oom").memory_limit, 48 << 20);
    assert_eq!(by_name("pod-loop").restart_policy, "always");
}

#[tokio::test]
async fn a_container_moved_to_another_host_port_remembers_the_old_one() {
    let mut source = ContainersSource::default();
    let mut c = inspect("shop-web").container;
    source.remember_ports(&mut c);
    assert!(c.past_host_ports.is_empty());
    let mut moved = inspect("shop-web").container;
    moved.ports[0].host_port = 8090;
    source.remember_ports(&mut moved);
    assert_eq!(moved.past_host_ports, [8080]);
}

#[tokio::test]
async fn missing_socket_and_permission_denied_are_unavailable_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut absent = ContainersSource::new(ContainersSettings {
        socket: dir.path().join("none.sock"),
        ..ContainersSettings::default()
    });
    assert!(!absent.active(&scope()), "no engine, no section");
    let mut configured = ContainersSource::new(ContainersSettings {
        socket: dir.path().join("none.sock"),
        explicit: true,
        ..ContainersSettings::default()
    });
    assert!(configured.active(&scope()));
    let reason = configured.collect(&scope()).await.unwrap_err();
    assert!(reason.0.contains("no engine socket at"), "{reason}");
    drop(absent.collect(&scope()).await);

    // A socket nobody serves.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let mut refused = ContainersSource::new(ContainersSettings {
        socket: stale,
        explicit: true,
        ..ContainersSettings::default()
    });
    let reason = refused.collect(&scope()).await.unwrap_err();
    assert!(reason.0.contains("refuses connections"), "{reason}");

    // The agent's user without the socket's group.
    let denied = engine::connect_error(
        Path::new("/run/docker.sock"),
        "/version",
        std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    );
    assert!(
        denied
            .to_string()
            .starts_with("permission denied on /run/docker.sock"),
        "{denied}"
    );
    // Root bypasses file modes, so the real denied socket runs only unprivileged.
    if nix::unistd::geteuid().is_root() {
        return;
    }
    let socket = fake_engine(dir.path()).await;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut denied = ContainersSource::new(ContainersSettings {
        socket,
        ..ContainersSettings::default()
    });
    let reason = denied.collect(&scope()).await.unwrap_err();
    assert!(reason.0.contains("permission denied"), "{reason}");
}
