//! Real servers for probe tests, here and in the crates that probe: misbehaving TCP servers on loopback
//! port 0, nginx and PHP-FPM started in temp dirs, and test certificates.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a hand-made server does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Reads the request and closes without a byte.
    Close,
    /// Reads the request and resets (SO_LINGER 0).
    Reset,
    /// Reads the request and writes these bytes, then closes.
    Reply(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
}

/// A server on 127.0.0.1:<port> that records the requests it saw.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request it read, in order.
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Connections accepted.
    pub accepted: Arc<Mutex<usize>>,
}

/// Starts a server on 127.0.0.1 port 0 that treats every connection with `behaviour`.
pub async fn serve(behaviour: Behaviour) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let accepted = Arc::new(Mutex::new(0usize));
    let (seen, count) = (requests.clone(), accepted.clone());
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            *count.lock().unwrap() += 1;
            let request = read_request(&mut stream).await;
            seen.lock().unwrap().push(request);
            match &behaviour {
                Behaviour::Close => drop(stream),
                Behaviour::Reset => {
                    stream.set_zero_linger().unwrap();
                    drop(stream);
                }
                Behaviour::Reply(bytes) => {
                    let _ = stream.write_all(bytes).await;
                    let _ = stream.shutdown().await;
                }
                Behaviour::Hang => held.push(stream),
            }
        }
    });
    TestServer {
        addr,
        requests,
        accepted,
    }
}

async fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !request_complete(&buf) && buf.len() < 65536 {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
}

/// Whether `buf` holds an HTTP head, or a FastCGI request up to its empty STDIN record.
fn request_complete(buf: &[u8]) -> bool {
    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
        return true;
    }
    let mut rest = buf;
    while let Ok((record, used)) = crate::fastcgi::decode_record(rest) {
        if record.kind == crate::fastcgi::RecordType::Stdin && record.content.is_empty() {
            return true;
        }
        rest = &rest[used..];
    }
    false
}

/// A port nothing listens on (bound then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A child process killed on drop.
pub struct Running {
    /// The server process, stopped on drop.
    pub child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM, so a PHP-FPM master takes its workers down with it
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Waits until `ready` holds or the deadline passes.
pub fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not become ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts nginx with `servers` (the body of the http block) in `dir`.
pub fn nginx(dir: &Path, servers: &str, ports: &[u16]) -> Running {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n{servers}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let running = Running { child };
    for port in ports {
        wait_for("nginx", || {
            std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok()
        });
    }
    running
}

/// Starts a PHP-FPM pool listening on `<dir>/fpm.sock`, as root (`-R`).
pub fn php_fpm(dir: &Path) -> Running {
    let d = dir.display();
    let conf = format!(
        "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n\
         [probe]\nlisten = {d}/fpm.sock\nuser = root\ngroup = root\npm = static\npm.max_children = 1\n\
         catch_workers_output = yes\n"
    );
    let path = dir.join("fpm.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("php-fpm8.2")
        .args(["-F", "-R", "-n", "-y"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let sock = dir.join("fpm.sock");
    wait_for("php-fpm", || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    Running { child }
}

/// A test CA and a leaf for `names`, optionally already expired.
pub struct TestPki {
    /// The CA certificate to trust.
    pub ca_der: rustls::pki_types::CertificateDer<'static>,
    /// The leaf certificate.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
}

/// Issues a test CA and a leaf for `names`.
pub fn pki(names: &[&str], expired: bool) -> TestPki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gw502 test ca");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    if expired {
        leaf.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
        leaf.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    }
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&leaf_key, &ca).unwrap();
    TestPki {
        ca_der: ca.der().clone(),
        cert_pem: cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}
