//! The Varnish source against a real varnishd (Debian's 7.1, foreground,
//! its own instance directory, loopback only) in front of a closed port, and
//! its pure helpers.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use gw502_proxy::Proxy as _;

use super::*;
use crate::source::Roots;

/// Stops the varnishd it holds when dropped, also when a test fails.
struct Varnishd(Child);

impl Drop for Varnishd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts varnishd in `dir` with one backend on a closed port; returns the
/// guard, the listen port, the closed port and the argv it ran.
fn start(dir: &Path) -> (Varnishd, u16, u16, Vec<String>) {
    let (port, admin, closed) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("site.vcl"),
        format!("vcl 4.1;\nbackend app {{ .host = \"127.0.0.1\"; .port = \"{closed}\"; }}\n"),
    )
    .unwrap();
    std::fs::write(dir.join("secret"), "gw502-test-secret\n").unwrap();
    let d = |f: &str| dir.join(f).display().to_string();
    let argv: Vec<String> = [
        "varnishd",
        "-F",
        "-j",
        "none",
        "-n",
        &d("n"),
        "-a",
        &format!("127.0.0.1:{port}"),
        "-T",
        &format!("127.0.0.1:{admin}"),
        "-S",
        &d("secret"),
        "-f",
        &d("site.vcl"),
        "-s",
        "malloc,16m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let child = Command::new("varnishd")
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("varnishd is installed (tests/run.sh installs it)");
    let guard = Varnishd(child);
    // Wait until it answers: a bounded number of connection attempts.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (guard, port, closed, argv)
}

fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: shop.example:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn a_refused_backend_is_a_signal_and_its_health_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (_varnishd, port, closed, argv) = start(dir.path());
    let units = dir.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("varnish.service"),
        format!("[Service]\nExecStart={}\n", argv.join(" ")),
    )
    .unwrap();
    let vcl = std::fs::read_to_string(dir.path().join("site.vcl")).unwrap();
    let mut config = varnish::Varnish
        .parse_config(&vcl, &varnish::Varnish.default_location())
        .config;
    config.kind = "varnish".into();
    let scope = Scope {
        roots: Roots {
            etc: dir.path().join("etc"),
            ..Roots::default()
        },
        proxies: vec![config],
        ..Scope::default()
    };
    for path in ["/a", "/b"] {
        let answer = get(port, path);
        assert!(
            answer.starts_with("HTTP/1.1 503 Backend fetch failed"),
            "{answer}"
        );
    }
    let mut source = VarnishSource::default();
    let reading = source.collect(&scope).await.unwrap();
    let runtime = reading.runtime.clone().unwrap();
    assert_eq!(runtime.unavailable, "");
    assert_eq!(runtime.log_unavailable, "");
    let b = &runtime.backends[0];
    assert_eq!(
        (b.name.as_str(), b.health.as_str(), b.address.clone()),
        ("boot.app", "healthy", format!("127.0.0.1:{closed}"))
    );
    assert_eq!(reading.signals.len(), 1, "{:?}", reading.signals);
    let s = &reading.signals[0];
    assert_eq!(s.proxy, "varnish");
    assert_eq!(s.upstream, format!("http://127.0.0.1:{closed}"));
    assert_eq!(s.cause, "service_down|wrong_port|not_listening");
    assert_eq!(
        (s.count, s.status, s.server.as_str()),
        (2, 503, "shop.example")
    );
    assert!(s.samples[0].contains("fail errno 111 (Connection refused)"));
    assert_eq!(source.gate.reads, (1, 1));
    // Reported once: the next run only counts newer failures. No fetch failed
    // since, so varnishstat's counters stood still: neither the log nor the
    // backend list was read again, and the last list is reported again.
    let again = source.collect(&scope).await.unwrap();
    assert!(again.signals.is_empty(), "{:?}", again.signals);
    assert_eq!(source.gate.reads, (1, 1));
    assert_eq!(again.runtime.unwrap().backends, runtime.backends);
    get(port, "/c");
    let third = source.collect(&scope).await.unwrap();
    assert_eq!(third.signals[0].count, 1);
    assert_eq!(source.gate.reads, (2, 2));
}

#[tokio::test]
async fn no_varnish_nothing_read_and_a_dead_one_is_unavailable() {
    let mut source = VarnishSource::default();
    let none = source.collect(&Scope::default()).await.unwrap();
    assert_eq!(none, VarnishReading::default());
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("varnish.service"),
        format!(
            "[Service]\nExecStart=/usr/sbin/varnishd -n {}\n",
            dir.path().join("gone").display()
        ),
    )
    .unwrap();
    let scope = Scope {
        roots: Roots {
            etc: dir.path().join("etc"),
            ..Roots::default()
        },
        proxies: vec![ProxyConfig {
            kind: "varnish".into(),
            ..ProxyConfig::default()
        }],
        ..Scope::default()
    };
    // Without its shared memory and with no admin port, only varnishstat ran: its
    // reason stands for the rest.
    let err = source.collect(&scope).await.unwrap_err();
    assert!(
        err.0.starts_with("varnishstat: ") && !err.0.contains("varnishadm"),
        "{err}"
    );
    let section = VarnishReading::unavailable(err.0.clone());
    assert_eq!(section.runtime.unwrap().log_unavailable, err.0);
    // An admin port the unit names is still asked: refused, with its own reason.
    std::fs::write(dir.path().join("secret"), "s\n").unwrap();
    std::fs::write(
        units.join("varnish.service"),
        format!(
            "[Service]\nExecStart=/usr/sbin/varnishd -n {} -T 127.0.0.1:{} -S {}\n",
            dir.path().join("gone").display(),
            free_port(),
            dir.path().join("secret").display()
        ),
    )
    .unwrap();
    let err = VarnishSource::default().collect(&scope).await.unwrap_err();
    assert!(
        err.0.contains("varnishadm: ") && err.0.contains("varnishstat: "),
        "{err}"
    );
}

#[test]
fn apply_puts_health_on_the_varnish_config_and_signals_in_the_log() {
    let reading = VarnishReading {
        runtime: Some(ProxyRuntime {
            unavailable: "x".into(),
            ..ProxyRuntime::default()
        }),
        signals: vec![LogSignal {
            proxy: "varnish".into(),
            ..LogSignal::default()
        }],
    };
    let mut config = ProxyConfigSection {
        proxies: vec![
            ProxyConfig {
                kind: "nginx".into(),
                ..ProxyConfig::default()
            },
            ProxyConfig {
                kind: "varnish".into(),
                ..ProxyConfig::default()
            },
        ],
        ..ProxyConfigSection::default()
    };
    let mut log = ProxyLogSection::default();
    reading.apply(&mut config, &mut log);
    assert!(config.proxies[0].runtime.is_none());
    assert_eq!(config.proxies[1].runtime.as_ref().unwrap().unavailable, "x");
    assert_eq!(log.signals.len(), 1);
    assert_eq!(
        failure(
            "varnishlog",
            b"",
            b".....\nVSM: Could not get hold of varnishd, is it running?\n"
        ),
        "varnishlog: VSM: Could not get hold of varnishd, is it running?"
    );
}
