//! Visitor traffic for scenarios: plain HTTP/1.0 GETs from the machine to a lab host,
//! once or as a steady background load of several concurrent visitors, so the proxy's
//! logs carry the failure the way real visitors would cause it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One HTTP/1.0 GET of `path` at `addr`; the status (0 when no status line came back).
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    get_as(addr, &addr.ip().to_string(), path, timeout)
}

/// [`get`] with `host` as the `Host` header (a site served under its name).
pub fn get_as(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: gw502-lab\r\n\r\n"
    )?;
    let mut head = Vec::new();
    stream.take(4096).read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    Ok(text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

/// Background visitors requesting one path in a loop until dropped.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failures: Arc<Mutex<Failures>>,
    threads: Vec<JoinHandle<()>>,
}

/// What the visitors saw go wrong.
#[derive(Debug, Default)]
struct Failures {
    /// When a visitor first got an error.
    first: Option<Instant>,
    /// Failed answers by status (0: no status line came back).
    by_status: BTreeMap<u16, u64>,
}

impl Load {
    /// `visitors` concurrent loops, each a GET of `path` then a pause of `pause`.
    pub fn start(addr: SocketAddr, path: &str, visitors: usize, pause: Duration) -> Load {
        Load::start_as(addr, &addr.ip().to_string(), path, visitors, pause)
    }

    /// [`Load::start`] with `host` as the `Host` header.
    pub fn start_as(
        addr: SocketAddr,
        host: &str,
        path: &str,
        visitors: usize,
        pause: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Failures::default()));
        let threads = (0..visitors.max(1))
            .map(|_| {
                let (stop, sent, failures, path, host) = (
                    stop.clone(),
                    sent.clone(),
                    failures.clone(),
                    path.to_owned(),
                    host.to_owned(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let status = get_as(addr, &host, &path, Duration::from_secs(20));
                        if !matches!(status, Ok(200..=399)) {
                            let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                            f.first.get_or_insert_with(Instant::now);
                            *f.by_status.entry(status.unwrap_or(0)).or_default() += 1;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            failures,
            threads,
        }
    }

    /// When a visitor first got an error (a status outside 200-399, or no
    /// answer): when the fault became visible from outside.
    pub fn first_error(&self) -> Option<Instant> {
        self.failures().first
    }

    /// The failed answers so far, as `502 ×31, no answer ×2` (`none` when none failed).
    pub fn failed_statuses(&self) -> String {
        let f = self.failures();
        if f.by_status.is_empty() {
            return "none".into();
        }
        f.by_status
            .iter()
            .map(|(status, n)| match status {
                0 => format!("no answer ×{n}"),
                s => format!("{s} ×{n}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests completed so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
