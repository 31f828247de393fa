//! A webhook receiver on loopback whose behaviour the test switches: answer
//! 200, answer 500, answer 200 slowly, or hang (read the request, never
//! answer). It records
//! every request with what it answered, and counts deliveries the way a
//! receiver that dedupes by `Idempotency-Key` would.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200.
    Ok,
    /// 500.
    Fail,
    /// Never answers.
    Hang,
    /// Takes the request, answers 200 after 700 ms (within the
    /// collector's 1 s timeout): a sender may die in between.
    Slow,
}

/// One request and what it was answered.
#[derive(Debug, Clone)]
pub struct Got {
    /// `Idempotency-Key`.
    pub key: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// The incident id in the body.
    pub incident: u64,
    /// What was answered: 200, 500, or 0 for none (hung).
    pub answered: u16,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Got>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Listens on 127.0.0.1, any port, answering 200.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(Mutex::new(Mode::Ok));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (m, g) = (mode.clone(), got.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, g) = (m.clone(), g.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, m, g).await;
                });
            }
        });
        Ok(Self {
            addr,
            mode,
            got,
            task,
        })
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Switches how later requests are answered.
    pub fn set(&self, mode: Mode) {
        if let Ok(mut m) = self.mode.lock() {
            *m = mode;
        }
    }

    /// Every request so far.
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Requests answered 200 (the receiver took them).
    pub fn accepted(&self) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.answered == 200)
            .collect()
    }

    /// The counts a receiver deduping by key sees.
    pub fn tally(&self) -> Tally {
        let accepted = self.accepted();
        let keys: BTreeSet<&str> = accepted.iter().map(|g| g.key.as_str()).collect();
        let mut per_event: BTreeMap<(u64, String), BTreeSet<&str>> = BTreeMap::new();
        for g in &accepted {
            per_event
                .entry((g.incident, g.event.clone()))
                .or_default()
                .insert(&g.key);
        }
        Tally {
            requests: self.got().len(),
            accepted: accepted.len(),
            distinct_keys: keys.len(),
            events: per_event.len(),
            events_with_two_keys: per_event.values().filter(|k| k.len() > 1).count(),
        }
    }
}

/// What reached a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Every request, answered or not.
    pub requests: usize,
    /// Requests answered 200.
    pub accepted: usize,
    /// Distinct idempotency keys among them.
    pub distinct_keys: usize,
    /// Distinct (incident, event) among them.
    pub events: usize,
    /// (incident, event) delivered under two keys: a real duplicate.
    pub events_with_two_keys: usize,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Vec<Got>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 1 << 20 || !read_more(&mut stream, &mut buf).await? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if !read_more(&mut stream, &mut buf).await? {
                return Ok(());
            }
        }
        let body: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
        buf.drain(..head_end + length);
        let now = mode.lock().map(|m| *m).unwrap_or(Mode::Ok);
        let answered = match now {
            Mode::Ok | Mode::Slow => 200,
            Mode::Fail => 500,
            Mode::Hang => 0,
        };
        if let Ok(mut g) = got.lock() {
            g.push(Got {
                key: header("idempotency-key").unwrap_or_default(),
                event: body["event"].as_str().unwrap_or_default().to_string(),
                incident: body["incident"]["id"].as_u64().unwrap_or(0),
                answered,
            });
        }
        match now {
            Mode::Hang => {
                // Hold the connection open and say nothing until the client gives up.
                while read_more(&mut stream, &mut buf).await? {}
                return Ok(());
            }
            Mode::Slow => {
                tokio::time::sleep(std::time::Duration::from_millis(700)).await;
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await?
            }
            Mode::Ok => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await?
            }
            Mode::Fail => {
                stream
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nfail",
                    )
                    .await?
            }
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}
