//! TLS for probes: a rustls client that verifies like a verifying proxy but
//! finishes the handshake either way, so a probe can say both "the
//! certificate would fail verification" and "the upstream answers".
//!
//! Verification uses the Mozilla roots of `webpki-roots` plus any extra roots
//! the caller adds (a private CA), and checks the name the probe connects
//! with. The outcome of a certificate problem depends on [`TlsPolicy::verify`]:
//! with `verify` on (the default) it is `tls_error` with a `certificate_*`
//! detail and the status that came back anyway; with it off (the proxy does
//! not verify, nginx's `proxy_ssl_verify off`) the problem is only noted.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::head::preview;
use super::outcome::{Failure, Outcome, Phase};

/// How a probe treats the peer's certificate.
#[derive(Debug, Clone)]
pub struct TlsPolicy {
    /// Report certificate problems as `tls_error` (a verifying proxy would fail).
    pub verify: bool,
    /// Roots trusted in addition to the Mozilla set.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        Self {
            verify: true,
            extra_roots: Vec::new(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Records the verification result of the real webpki verifier and lets the
/// handshake go on.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Arc<Mutex<Option<rustls::Error>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Err(e) = verdict
            && let Ok(mut slot) = self.seen.lock()
        {
            *slot = Some(e);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A stream that keeps the first bytes the peer sent, to tell a plaintext
/// peer from a TLS failure after the handshake breaks.
#[derive(Debug)]
pub struct Recorder<S> {
    inner: S,
    first: Vec<u8>,
}

impl<S> Recorder<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            first: Vec::new(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.first.len() < 64 {
            let fresh = &buf.filled()[before..];
            let take = fresh.len().min(64 - self.first.len());
            let fresh = fresh[..take].to_vec();
            self.first.extend_from_slice(&fresh);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A finished handshake and what verification found.
pub struct Handshake<S> {
    /// The TLS stream.
    pub stream: tokio_rustls::client::TlsStream<Recorder<S>>,
    /// The certificate problem, as a `certificate_*: ...` detail, if any.
    pub certificate_problem: Option<String>,
}

/// Runs a TLS handshake over `io` for `server_name` (SNI and the name checked).
pub async fn handshake<S>(
    io: S,
    server_name: &str,
    policy: &TlsPolicy,
) -> Result<Handshake<S>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| {
        Failure::new(
            Outcome::TlsError,
            Phase::Tls,
            format!("handshake: server name {server_name:?}: {e}"),
        )
    })?;
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in &policy.extra_roots {
        // a bad extra root only means fewer trusted certificates
        let _ = roots.add(cert.clone());
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| {
            Failure::new(
                Outcome::TlsError,
                Phase::Tls,
                format!("handshake: verifier: {e}"),
            )
        })?;
    let seen = Arc::new(Mutex::new(None));
    let verifier = RecordingVerifier {
        inner,
        seen: seen.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::new(Outcome::TlsError, Phase::Tls, format!("handshake: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = connector
        .connect(name, Recorder::new(io))
        .into_fallible()
        .await;
    match result {
        Ok(stream) => {
            let problem = seen
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map(|e| certificate_detail(&e));
            Ok(Handshake {
                stream,
                certificate_problem: problem,
            })
        }
        Err((err, recorder)) => Err(classify_handshake(&err, &recorder.first)),
    }
}

/// Classifies a failed handshake from the error and the first bytes read.
pub fn classify_handshake(err: &io::Error, first: &[u8]) -> Failure {
    let tls_record = matches!(first.first(), Some(0x14..=0x17)) && first.get(1) == Some(&0x03);
    if !first.is_empty() && !tls_record {
        return Failure::new(
            Outcome::TlsError,
            Phase::Tls,
            format!("plaintext_peer: {}", preview(first)),
        );
    }
    let rustls_error = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(e @ rustls::Error::InvalidCertificate(_)) => {
            Failure::new(Outcome::TlsError, Phase::Tls, certificate_detail(e))
        }
        Some(e) => Failure::new(Outcome::TlsError, Phase::Tls, format!("handshake: {e}")),
        None if first.is_empty() => match super::outcome::classify_io(Phase::Tls, err) {
            Outcome::Reset => Failure::new(
                Outcome::TlsError,
                Phase::Tls,
                format!("handshake: reset: {err}"),
            ),
            _ => Failure::new(Outcome::TlsError, Phase::Tls, format!("handshake: {err}")),
        },
        None => Failure::new(Outcome::TlsError, Phase::Tls, format!("handshake: {err}")),
    }
}

/// The `certificate_*` detail of a verification error.
pub fn certificate_detail(err: &rustls::Error) -> String {
    let prefix = match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired"
            }
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "certificate_untrusted"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate_name_mismatch"
            }
            _ => "certificate_invalid",
        },
        _ => "certificate_invalid",
    };
    format!("{prefix}: {err}")
}
