//! Tests of the sockets source against real listeners opened by this test
//! process, through both netlink and the `/proc/net` fallback.

use std::net::{Ipv6Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;

use super::*;

struct Opened {
    v4: TcpListener,
    v6: Option<TcpListener>,
    unix_path: std::path::PathBuf,
    _unix: UnixListener,
    _dir: tempfile::TempDir,
}

fn open_listeners() -> Opened {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok();
    let dir = tempfile::tempdir().unwrap();
    let unix_path = dir.path().join("app.sock");
    let unix = UnixListener::bind(&unix_path).unwrap();
    std::fs::set_permissions(&unix_path, std::fs::Permissions::from_mode(0o660)).unwrap();
    Opened {
        v4,
        v6,
        unix_path,
        _unix: unix,
        _dir: dir,
    }
}

fn assert_found(section: &SocketsSection, opened: &Opened, method: &str) {
    assert_eq!(section.method, method);
    let pid = std::process::id();
    let port = u32::from(opened.v4.local_addr().unwrap().port());
    let v4 = section
        .listeners
        .iter()
        .find(|l| l.family == "tcp4" && l.port == port)
        .unwrap_or_else(|| panic!("tcp4 listener {port} missing via {method}"));
    assert_eq!(v4.address, "127.0.0.1");
    assert_eq!(v4.pid, pid, "owner of tcp4 via {method}");
    assert!(!v4.process.is_empty());

    if let Some(v6) = &opened.v6 {
        let port = u32::from(v6.local_addr().unwrap().port());
        let found = section
            .listeners
            .iter()
            .find(|l| l.family == "tcp6" && l.port == port)
            .unwrap_or_else(|| panic!("tcp6 listener {port} missing via {method}"));
        assert_eq!(found.address, "::1");
        assert_eq!(found.pid, pid);
    }

    let path = opened.unix_path.to_str().unwrap();
    let unix = section
        .listeners
        .iter()
        .find(|l| l.family == "unix" && l.address == path)
        .unwrap_or_else(|| panic!("unix listener {path} missing via {method}"));
    assert_eq!(unix.pid, pid);
    assert_eq!(unix.mode, 0o660);
    assert_eq!(unix.uid, nix::unistd::getuid().as_raw());
    assert_eq!(unix.gid, nix::unistd::getgid().as_raw());
}

#[tokio::test]
async fn netlink_finds_this_process_listeners() {
    let opened = open_listeners();
    let mut source = SocketsSource::new(SocketsSettings::default());
    let section = source.collect(&Scope::default()).await.unwrap();
    assert_found(&section, &opened, "netlink");
    let port = u32::from(opened.v4.local_addr().unwrap().port());
    let v4 = section.listeners.iter().find(|l| l.port == port).unwrap();
    assert!(v4.backlog > 0, "netlink reports the backlog");
    // The second collect confirms this test's owners from the cache. (Other
    // tests of this process may open listeners meanwhile, so a walk for
    // *their* inodes can still happen; ours must be cache hits.)
    let again = source.collect(&Scope::default()).await.unwrap();
    assert_found(&again, &opened, "netlink");
    assert!(source.owners.last.cache_hits >= 3);
}

#[tokio::test]
async fn procfs_fallback_finds_this_process_listeners() {
    let opened = open_listeners();
    let mut source = SocketsSource::new(SocketsSettings {
        force_procfs: true,
        ..SocketsSettings::default()
    });
    let section = source.collect(&Scope::default()).await.unwrap();
    assert_found(&section, &opened, "procfs");
}

#[test]
fn queued_connections_show_in_the_accept_queue() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for force_procfs in [false, true] {
        let settings = SocketsSettings {
            force_procfs,
            ..SocketsSettings::default()
        };
        let section = scan(&Roots::default(), &settings, &mut OwnerIndex::default()).unwrap();
        let found = section
            .listeners
            .iter()
            .find(|l| l.family == "tcp4" && l.port == u32::from(addr.port()))
            .unwrap();
        assert_eq!(found.queued, 3, "accept queue via {}", section.method);
    }
}

#[test]
fn missing_proc_root_is_unavailable() {
    let roots = Roots {
        proc: "/nonexistent/proc".into(),
        ..Roots::default()
    };
    let err = scan(
        &roots,
        &SocketsSettings::default(),
        &mut OwnerIndex::default(),
    )
    .unwrap_err();
    assert!(err.0.contains("/nonexistent/proc/net/tcp"), "{err}");
}

/// `/proc` captured from an nspawn host running nginx and php-fpm (see
/// agent/fixtures/proc/README.md): listeners, owners and their units.
#[test]
fn captured_proc_tree_gives_listeners_owned_by_units() {
    let roots = Roots {
        proc: concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc").into(),
        ..Roots::default()
    };
    let section = scan(
        &roots,
        &SocketsSettings::default(),
        &mut OwnerIndex::default(),
    )
    .unwrap();
    assert_eq!(section.method, "procfs");
    let find = |family: &str, address: &str| {
        section
            .listeners
            .iter()
            .find(|l| l.family == family && l.address == address)
            .unwrap_or_else(|| panic!("{family} {address} missing"))
    };
    for (family, address) in [("tcp4", "0.0.0.0"), ("tcp6", "::")] {
        let nginx = find(family, address);
        assert_eq!(nginx.port, 80);
        assert_eq!((nginx.pid, nginx.process.as_str()), (41, "nginx"));
        assert_eq!(nginx.unit, "nginx.service");
    }
    let fpm = find("unix", "/run/php/php8.2-fpm.sock");
    assert_eq!((fpm.pid, fpm.process.as_str()), (36, "php-fpm8.2"));
    assert_eq!(fpm.unit, "php8.2-fpm.service");
    // Held by PID 1 and dbus-daemon, whose fds were not captured.
    let bus = find("unix", "/run/dbus/system_bus_socket");
    assert_eq!((bus.pid, bus.unit.as_str()), (0, ""));
    assert_eq!(
        section
            .listeners
            .iter()
            .filter(|l| l.family == "unix")
            .count(),
        7
    );
}
