//! Opening the transport of a probe: name resolution and a bounded connect
//! over TCP or a unix socket, timed per phase.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::outcome::{Failure, Outcome, Phase};

/// Any byte stream a probe talks over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a probe connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A host name or IP literal and a port.
    Tcp {
        /// Name or IP literal (no brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix socket path (already moved under the agent's roots).
    Unix(PathBuf),
}

/// An open transport with the time spent getting it.
pub struct Connected {
    /// The stream.
    pub io: Box<dyn Io>,
    /// `ip:port` or `unix:/path`.
    pub peer: String,
    /// Time spent resolving the name.
    pub dns_ms: u32,
    /// Time spent in connect.
    pub connect_ms: u32,
}

/// A failed connect, with the peer tried last (if any) and the DNS time.
#[derive(Debug)]
pub struct ConnectFailure {
    /// What went wrong.
    pub failure: Failure,
    /// The address tried, if resolution got that far.
    pub peer: String,
    /// Time spent resolving the name.
    pub dns_ms: u32,
}

/// Milliseconds since `start`, saturated to `u32`.
pub fn ms_since(start: Instant) -> u32 {
    u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// Resolves (unless `fixed_peer` pins the address) and connects within `timeout`.
///
/// Each resolved address is tried in order, like a proxy trying the servers a
/// name expands to; the first failure is reported when none connects.
pub async fn connect(
    endpoint: &Endpoint,
    fixed_peer: Option<SocketAddr>,
    timeout: Duration,
) -> Result<Connected, ConnectFailure> {
    let deadline = tokio::time::Instant::now() + timeout;
    match endpoint {
        Endpoint::Unix(path) => {
            let peer = format!("unix:{}", path.display());
            let start = Instant::now();
            match tokio::time::timeout_at(deadline, UnixStream::connect(path)).await {
                Ok(Ok(stream)) => Ok(Connected {
                    io: Box::new(stream),
                    peer,
                    dns_ms: 0,
                    connect_ms: ms_since(start),
                }),
                Ok(Err(e)) => Err(ConnectFailure {
                    failure: Failure::io(Phase::Connect, &e),
                    peer,
                    dns_ms: 0,
                }),
                Err(_) => Err(ConnectFailure {
                    failure: Failure::timeout(Phase::Connect),
                    peer,
                    dns_ms: 0,
                }),
            }
        }
        Endpoint::Tcp { host, port } => {
            let dns_start = Instant::now();
            let addrs: Vec<SocketAddr> = match fixed_peer {
                Some(addr) => vec![addr],
                None => resolve(host, *port, deadline)
                    .await
                    .map_err(|failure| ConnectFailure {
                        failure,
                        peer: String::new(),
                        dns_ms: ms_since(dns_start),
                    })?,
            };
            let dns_ms = if fixed_peer.is_some() {
                0
            } else {
                ms_since(dns_start)
            };
            let mut first: Option<ConnectFailure> = None;
            for addr in addrs {
                let start = Instant::now();
                let failure =
                    match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                        Ok(Ok(stream)) => {
                            let _ = stream.set_nodelay(true);
                            return Ok(Connected {
                                io: Box::new(stream),
                                peer: addr.to_string(),
                                dns_ms,
                                connect_ms: ms_since(start),
                            });
                        }
                        Ok(Err(e)) => Failure::io(Phase::Connect, &e),
                        Err(_) => Failure::timeout(Phase::Connect),
                    };
                let timed_out = failure.outcome == Outcome::Timeout;
                first.get_or_insert(ConnectFailure {
                    failure,
                    peer: addr.to_string(),
                    dns_ms,
                });
                if timed_out {
                    break;
                }
            }
            Err(first.unwrap_or_else(|| ConnectFailure {
                failure: Failure::new(
                    Outcome::DnsError,
                    Phase::Connect,
                    format!("{host}: no addresses"),
                ),
                peer: String::new(),
                dns_ms,
            }))
        }
    }
}

async fn resolve(
    host: &str,
    port: u16,
    deadline: tokio::time::Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(Failure::new(
                    Outcome::DnsError,
                    Phase::Connect,
                    format!("{host}: no addresses"),
                ))
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(Failure::new(
            Outcome::DnsError,
            Phase::Connect,
            format!("{host}: {e}"),
        )),
        Err(_) => Err(Failure::new(
            Outcome::DnsError,
            Phase::Connect,
            format!("{host}: resolution timed out"),
        )),
    }
}
