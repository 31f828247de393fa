//! Lab smoke tests: real systemd hosts booted with `systemd-nspawn` on the lab bridge.
//!
//! They need root and `systemd-nspawn` (Debian package `systemd-container`) and fail with
//! a clear message otherwise; they never skip. The first boots a proxy host (nginx on :80
//! in front of an app unit on 127.0.0.1:8080) and a client host, checks traffic from the
//! machine and from the other host, stops the app to get a real 502, and checks that
//! dropping the lab leaves no mount, process or bridge behind. The second boots the other
//! fixture shapes (an HAProxy edge and a PHP-FPM host) and checks each answers. The third
//! SIGKILLs a test process (this binary, re-run) holding a booted host and checks that the
//! next `Lab::start` sweeps what it left.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gw502_tests::lab::{self, HostSpec, Lab, fixtures, procs};
use nix::unistd::Pid;

const APP_BODY: &str = "hello from the host1 app\n";

/// One HTTP/1.0 GET (no chunked answers, closed after); returns the status and the body.
fn http_get(ip: Ipv4Addr, path: &str) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from((ip, 80));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.take(1 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Poll `http_get` until it answers `want` (units may still be binding their ports).
fn get_until(ip: Ipv4Addr, path: &str, want: u16) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = http_get(ip, path);
        match &got {
            Ok((status, _)) if *status == want => return got.unwrap(),
            _ if Instant::now() >= deadline => {
                panic!("GET http://{ip}{path} never answered {want}, last: {got:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn proxy_host_serves_app_then_502_and_lab_cleans_up() {
    let started = Instant::now();
    let mut lab = Lab::start().expect("the lab cannot start");
    assert_eq!(lab.bridge_ip(), Ipv4Addr::new(10, 77, 0, 1));
    let host1 = fixtures::proxy_host("host1", 1, APP_BODY);
    let ip1 = host1.ip();
    let host2 = HostSpec::new("host2", 2).host_entry("host1", ip1);
    lab.boot_all(vec![host1, host2]).expect("hosts do not boot");
    for host in lab.hosts() {
        println!("{} booted in {:?}", host.name(), host.boot_time());
    }
    let h1 = lab.host("host1").unwrap();
    let h2 = lab.host("host2").unwrap();
    assert_eq!(h1.ip(), Ipv4Addr::new(10, 77, 0, 11));
    let hostname = h1.exec(&["hostname"]).unwrap();
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), "host1");
    // Only what the spec enables runs: postgresql comes from the image, masked here.
    let pg = h1.exec(&["systemctl", "is-active", "postgresql"]).unwrap();
    assert_ne!(String::from_utf8_lossy(&pg.stdout).trim(), "active");
    h1.systemctl(&["is-active", "--quiet", "nginx", "app"])
        .unwrap();
    // Files written on the machine show up inside, at once.
    h1.write_file(
        Path::new("/srv/probe/note.txt"),
        "written from the machine\n",
        0o600,
    )
    .unwrap();
    let cat = h1.exec(&["cat", "/srv/probe/note.txt"]).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "written from the machine\n"
    );
    assert!(h1.write_file(Path::new("/run/x"), "", 0o644).is_err());

    // From the machine, through nginx to the app.
    let (_, body) = get_until(ip1, "/", 200);
    assert_eq!(body, APP_BODY, "app journal:\n{}", h1.journal("app"));
    let (_, page) = get_until(ip1, "/nginx-static.txt", 200);
    assert_eq!(page, "static from nginx\n");

    // From host2, by name through its /etc/hosts.
    let curl = h2
        .exec(&["curl", "-sS", "--max-time", "10", "http://host1/"])
        .unwrap();
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&curl.stdout), APP_BODY);

    // A real fault: the app is down, nginx answers 502 and still serves its static page.
    h1.systemctl(&["stop", "app"]).unwrap();
    let (status, _) = http_get(ip1, "/").unwrap();
    assert_eq!(status, 502, "nginx journal:\n{}", h1.journal("nginx"));
    assert_eq!(http_get(ip1, "/nginx-static.txt").unwrap().0, 200);
    assert!(h1.systemctl(&["start", "no-such-unit"]).is_err());

    let root = h1.root().to_path_buf();
    drop(lab);
    let left = lab::leftovers();
    assert!(left.is_empty(), "lab left behind: {left:?}");
    assert!(!root.exists(), "{} still exists", root.display());
    let took = started.elapsed();
    println!("smoke test took {took:?}");
    assert!(took < Duration::from_secs(60), "smoke test took {took:?}");
}

#[test]
fn edge_and_php_shapes_answer() {
    let mut lab = Lab::start().expect("the lab cannot start");
    let origin = fixtures::proxy_host("origin", 1, APP_BODY);
    let origin_addr = SocketAddrV4::new(origin.ip(), 80);
    let edge = fixtures::edge_host("edge", 2, origin_addr);
    let php = fixtures::php_host("php", 3, 1);
    let (edge_ip, php_ip) = (edge.ip(), php.ip());
    lab.boot_all(vec![origin, edge, php])
        .expect("hosts do not boot");
    for host in lab.hosts() {
        println!("{} booted in {:?}", host.name(), host.boot_time());
    }

    let (_, body) = get_until(edge_ip, "/", 200);
    assert_eq!(body, APP_BODY);
    let (_, body) = get_until(php_ip, "/index.php", 200);
    assert_eq!(body, "php from php\n");

    // The origin going away shows at the edge as a 5xx of its own.
    let origin = lab.host("origin").unwrap();
    origin.systemctl(&["stop", "nginx"]).unwrap();
    let (status, _) = http_get(edge_ip, "/").unwrap();
    assert_eq!(
        status,
        503,
        "haproxy journal:\n{}",
        lab.host("edge").unwrap().journal("haproxy")
    );
}

/// Env var telling [`child_boots_and_hangs`] it runs as the child of [`killed_run_is_swept`].
const CHILD_ENV: &str = "GW502_LAB_SWEEP_CHILD";

#[test]
#[ignore = "helper: run by killed_run_is_swept as a child process"]
fn child_boots_and_hangs() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut lab = Lab::start().expect("the lab cannot start");
    let host = lab
        .boot(HostSpec::new("swept", 9))
        .expect("host does not boot");
    println!("READY {}", host.leader().unwrap());
    // Hold the lab until the parent kills this process; EOF (parent gone) ends it too.
    let _ = std::io::stdin().read_line(&mut String::new());
}

#[test]
fn killed_run_is_swept() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_boots_and_hangs",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(pid) = line.strip_prefix("READY ") {
                let _ = ready.send(pid.trim().parse::<i32>().unwrap());
            }
        }
    });
    let leader = lines.recv_timeout(Duration::from_secs(90));
    child.kill().unwrap();
    child.wait().unwrap();
    let leader = Pid::from_raw(leader.expect("child never booted its host"));
    assert!(
        procs::alive(leader),
        "the killed run's host should outlive it"
    );

    let lab = Lab::start().expect("the lab cannot start");
    let swept = Path::new(lab::LAB_DIR).join("swept");
    assert!(
        !procs::alive(leader),
        "container init {leader} survived the sweep"
    );
    let mounts = procs::lab_mounts(Path::new(lab::LAB_DIR));
    assert!(mounts.iter().all(|m| !m.starts_with(&swept)), "{mounts:?}");
    assert!(!swept.exists());
    drop(lab);
    let left = lab::leftovers();
    assert!(left.is_empty(), "lab left behind: {left:?}");
}
