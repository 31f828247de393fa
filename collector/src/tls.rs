//! The mTLS listener: rustls with the reloading client verifier, handshakes
//! done here (each in its own task, bounded in time) and the established
//! streams handed to tonic.
//!
//! tonic's own `ServerTlsConfig` takes a CA and builds a fixed verifier, so
//! it cannot revoke without a restart; handing tonic
//! `tokio_rustls::server::TlsStream`s keeps `Request::peer_certs` working
//! (tonic reads the certificates from the stream's connect info). A refused
//! handshake is logged with the peer address and rustls' reason: a
//! certificate from another CA, a revoked one, or no certificate at all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Some(stream) = handshake(&acceptor, tcp, peer).await {
                    let _ = tx.send(stream).await;
                }
            });
        }
    });
    futures::StreamExt::map(ReceiverStream::new(rx), Ok)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::warn!(%peer, %error, "tls handshake refused");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "tls handshake timed out");
            None
        }
    }
}
