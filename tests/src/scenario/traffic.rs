//! Visitor traffic for scenarios: plain HTTP/1.0 GETs from the machine to a lab host,
//! once or as a steady background load of several concurrent visitors, so the proxy's
//! logs carry the failure the way real visitors would cause it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One HTTP/1.0 GET of `path` at `addr`; the status (0 when no status line came back).
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: gw502-lab\r\n\r\n",
        addr.ip()
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
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `visitors` concurrent loops, each a GET of `path` then a pause of `pause`.
    pub fn start(addr: SocketAddr, path: &str, visitors: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = (0..visitors.max(1))
            .map(|_| {
                let (stop, sent, path) = (stop.clone(), sent.clone(), path.to_owned());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = get(addr, &path, Duration::from_secs(20));
                        sent.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            threads,
        }
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
