//! `gw502ctl ui` through the real binary, without a browser: a non-loopback
//! `--listen` is refused with exit 64 before anything else, unreadable
//! credentials are refused at start, and with a collector that is not there
//! the web view still starts and answers every page with a 502 that names the
//! collector and the reason, while its own assets keep being served. Pages
//! against a real collector are in `tests/tests/ui_browser.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};

use gw502_pki::{self as pki, Role};

fn ctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gw502ctl"))
        .args(args)
        .env_clear()
        .output()
        .expect("gw502ctl runs")
}

#[test]
fn a_remote_listen_address_is_refused_unless_allowed() {
    let out = ctl(&["ui", "--listen", "0.0.0.0:8502"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve the web view on 0.0.0.0:8502")
            && err.contains("--allow-remote"),
        "{err}"
    );
    let out = ctl(&["ui", "--listen", "web:80"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --listen"));
    // With --allow-remote the address passes; the missing settings stop it next.
    let out = ctl(&["ui", "--listen", "0.0.0.0:0", "--allow-remote"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("refusing"));
}

/// A fleet PKI with an operator certificate, and a port nothing listens on.
struct Setup {
    _dir: tempfile::TempDir,
    args: Vec<String>,
    collector: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path()).unwrap();
    let op = pki::issue(dir.path(), Role::Operator, "alice", &[]).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let collector = format!("https://127.0.0.1:{port}");
    let args = vec![
        "--collector".into(),
        collector.clone(),
        "--ca".into(),
        dir.path().join("ca.crt").display().to_string(),
        "--cert".into(),
        op.cert.display().to_string(),
        "--key".into(),
        op.key.display().to_string(),
    ];
    Setup {
        _dir: dir,
        args,
        collector,
    }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, text)
}

struct Ui(Child);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn unreadable_credentials_stop_it_at_start() {
    let s = setup();
    let mut args: Vec<&str> = s.args.iter().map(String::as_str).collect();
    args[5] = "/nonexistent/alice.crt";
    args.extend(["ui", "--listen", "127.0.0.1:0"]);
    let out = ctl(&args);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot load client certificate"), "{err}");
}

#[test]
fn a_missing_collector_is_a_502_page_naming_it() {
    let s = setup();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gw502ctl"))
        .args(&s.args)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ui = Ui(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    assert!(line.contains(&s.collector), "{line}");
    for path in ["/", "/incidents/1", "/hosts", "/hosts/web-1", "/sites"] {
        let (status, page) = get(&addr, path);
        assert_eq!(status, 502, "{path}: {page}");
        assert!(page.contains("Collector unreachable"), "{path}: {page}");
        assert!(
            page.contains(&format!(
                "cannot reach collector at {}: connection refused",
                s.collector
            )),
            "{path}: {page}"
        );
        assert!(
            page.contains("content-security-policy: default-src 'none'"),
            "{page}"
        );
    }
    let (status, page) = get(&addr, "/nope");
    assert_eq!(status, 404, "{page}");
    let (status, css) = get(&addr, "/static/style.css");
    assert_eq!(status, 200);
    assert!(css.contains("content-type: text/css"), "{css}");
    drop(ui);
}
