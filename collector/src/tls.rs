//! The mTLS listener: rustls with the reloading client verifier, handshakes
//! done here (each in its own task, bounded in time) and the established
//! streams handed to tonic.
//!
//! tonic's own `ServerTlsConfig` takes a CA and builds a fixed verifier, so
//! it cannot revoke without a restart; handing tonic
//! `tokio_rustls::server::TlsStream`s keeps `Request::peer_certs` working
//! (tonic reads the certificates from the stream's connect info). A refused
//! handshake is logged with the peer address and rustls' reason: a
//! certificate from another CA, a revoked one, or no certificate at all. The
//! same refusal from the same address is logged at most a few times a minute,
//! the next line saying how many were not logged in between, so a client
//! retrying with a bad certificate (or a scanner) cannot flood the log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::revocation::{ReloadingVerifier, Revocation};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per refusal and address, at most [`REFUSAL_LOG_BURST`] lines in this period.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(60);
/// Lines per refusal and address in [`REFUSAL_LOG_PERIOD`].
const REFUSAL_LOG_BURST: u32 = 5;
/// Refusals remembered for rate limiting; past this the memory starts over
/// (a flood from many addresses then logs a line per address again, bounded).
const REFUSALS_KEPT: usize = 4096;

/// Builds the server config: this collector's certificate and key, client
/// certificates checked by `revocation`'s verifier in force, ALPN h2.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    revocation: Arc<Revocation>,
) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &*cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("collector certificate: {e}"))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &*key_pem)
        .map_err(|e| format!("collector key: {e}"))?
        .ok_or_else(|| "collector key: no private key in the file".to_owned())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(ReloadingVerifier(revocation)))
        .with_single_cert(certs, key)
        .map_err(|e| format!("collector certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts on `listener` and yields the streams whose handshake succeeded.
/// The accept task ends when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<ServerConfig>,
) -> impl futures::Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel::<TlsStream<TcpStream>>(64);
    let acceptor = TlsAcceptor::from(config);
    let refusals = Arc::new(Refusals::default());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, tx, refusals) = (acceptor.clone(), tx.clone(), refusals.clone());
            tokio::spawn(async move {
                if let Some(stream) = handshake(&acceptor, &refusals, tcp, peer).await {
                    let _ = tx.send(stream).await;
                }
            });
        }
    });
    futures::StreamExt::map(ReceiverStream::new(rx), Ok)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    refusals: &Refusals,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            let reason = error.to_string();
            if let Verdict::Log { suppressed } =
                refusals.failure(peer.ip(), &reason, Instant::now())
            {
                tracing::warn!(%peer, error = reason, suppressed, "tls handshake refused");
            }
            None
        }
        Err(_) => {
            if let Verdict::Log { suppressed } =
                refusals.failure(peer.ip(), "timeout", Instant::now())
            {
                tracing::warn!(%peer, timeout = ?HANDSHAKE_TIMEOUT, suppressed, "tls handshake timed out");
            }
            None
        }
    }
}

/// The rate limits of refused handshakes, per address and reason.
#[derive(Default)]
struct Refusals(Mutex<HashMap<(IpAddr, String), Window>>);

/// One address and reason's current period.
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// Whether to log a refusal.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Log it; `suppressed` refusals were not logged before it.
    Log { suppressed: u64 },
    /// Count it for the next line.
    Quiet,
}

impl Refusals {
    /// A refusal of `ip` for `reason` at `now`: whether to log it.
    fn failure(&self, ip: IpAddr, reason: &str, now: Instant) -> Verdict {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (ip, reason.to_owned());
        if seen.len() >= REFUSALS_KEPT && !seen.contains_key(&key) {
            seen.clear();
        }
        let window = seen.entry(key).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        if now.duration_since(window.started) >= REFUSAL_LOG_PERIOD {
            window.started = now;
            window.logged = 0;
        }
        if window.logged < REFUSAL_LOG_BURST {
            window.logged += 1;
            Verdict::Log {
                suppressed: std::mem::take(&mut window.suppressed),
            }
        } else {
            window.suppressed += 1;
            Verdict::Quiet
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_refusal_is_logged_a_few_times_a_period_and_others_at_once() {
        let refusals = Refusals::default();
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..REFUSAL_LOG_BURST {
            assert_eq!(
                refusals.failure(a, "UnknownIssuer", t0),
                Verdict::Log { suppressed: 0 }
            );
        }
        for _ in 0..100 {
            assert_eq!(refusals.failure(a, "UnknownIssuer", t0), Verdict::Quiet);
        }
        // Another reason, or another address, is news.
        assert_eq!(
            refusals.failure(a, "Revoked", t0),
            Verdict::Log { suppressed: 0 }
        );
        assert_eq!(
            refusals.failure(b, "UnknownIssuer", t0),
            Verdict::Log { suppressed: 0 }
        );
        let later = t0 + REFUSAL_LOG_PERIOD;
        assert_eq!(
            refusals.failure(a, "UnknownIssuer", later),
            Verdict::Log { suppressed: 100 }
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let refusals = Refusals::default();
        let now = Instant::now();
        for n in 0..(REFUSALS_KEPT as u32 + 10) {
            refusals.failure(IpAddr::from(n.to_be_bytes()), "x", now);
        }
        assert!(refusals.0.lock().unwrap().len() <= REFUSALS_KEPT);
    }
}
