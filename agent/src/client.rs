//! The agent's gRPC connection to the collector: mTLS by default, plaintext
//! only when explicitly asked for and only to a loopback collector.
//!
//! The channel is lazy, so a collector that is down at start-up or goes away
//! later is simply retried; [`Backoff`] spaces the retries with full jitter.
//! One [`CollectorClient`] talks to one address; choosing among several
//! collectors is [`crate::failover`]'s job.

use std::path::PathBuf;
use std::time::Duration;

use gw502_proto::v1::ingest_client::IngestClient;
use gw502_proto::v1::{HostReport, Nudge, NudgeRequest, ReportAck};
use rand::Rng;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use gw502_daemon::settings::Tls;

/// Why the client could not be set up or a report not delivered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The collector address is not a usable URL.
    #[error("invalid collector address {address:?}: {reason}")]
    Address {
        /// The address as configured.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Plaintext was configured for a collector that is not on loopback.
    #[error("plaintext is only allowed to a loopback collector, not {0}")]
    PlaintextNotLoopback(String),
    /// The collector refused or the transport failed.
    #[error("collector refused the report: {}", .0.message())]
    Status(#[from] tonic::Status),
}

/// How long one delivery may take in all: connecting, the TLS handshake and
/// the request. tonic bounds the TCP connect (5 s) and the request (15 s),
/// but a handshake with a peer that went silent (packets dropped) was bound
/// by neither, and held a send until the link came back.
pub const SEND_DEADLINE: Duration = Duration::from_secs(20);

/// A connection to the collector's ingest service.
#[derive(Debug, Clone)]
pub struct CollectorClient {
    inner: IngestClient<Channel>,
}

/// The TLS material of the agent, read once so that every collector address
/// (and every address a name resolves to) uses the same credentials.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// mTLS: the fleet CA and this host's certificate and key (PEM).
    Mutual {
        /// Fleet CA certificate.
        ca: Vec<u8>,
        /// This host's certificate.
        cert: Vec<u8>,
        /// Its private key.
        key: Vec<u8>,
    },
    /// No TLS, loopback only.
    Plaintext,
}

impl Credentials {
    /// Reads the files the transport names.
    pub fn load(transport: &Tls) -> Result<Self, ClientError> {
        Ok(match transport {
            Tls::Mutual { ca, cert, key } => Credentials::Mutual {
                ca: read(ca)?,
                cert: read(cert)?,
                key: read(key)?,
            },
            Tls::Plaintext => Credentials::Plaintext,
        })
    }
}

impl CollectorClient {
    /// Prepares a lazy channel to `address` (e.g. `https://collector:7502`).
    pub fn new(address: &str, transport: &Tls) -> Result<Self, ClientError> {
        Self::dial(address, None, &Credentials::load(transport)?)
    }

    /// Prepares a lazy channel to `address`. TLS checks the collector
    /// certificate against `server_name` when given (the configured name of
    /// a resolved address), else against the address's own host.
    pub fn dial(
        address: &str,
        server_name: Option<&str>,
        credentials: &Credentials,
    ) -> Result<Self, ClientError> {
        let endpoint =
            endpoint(address, server_name, credentials)?.timeout(Duration::from_secs(15));
        Ok(Self::over(endpoint))
    }

    /// Prepares a lazy channel to `address` for the collector's `Nudges` stream: no
    /// request timeout, since the stream stays open as long as the collector runs;
    /// HTTP/2 pings notice a collector that went away without closing it.
    pub fn listener(address: &str, credentials: &Credentials) -> Result<Self, ClientError> {
        let endpoint = endpoint(address, None, credentials)?
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        Ok(Self::over(endpoint))
    }

    fn over(endpoint: Endpoint) -> Self {
        let inner = IngestClient::new(endpoint.connect_lazy())
            .max_encoding_message_size(gw502_proto::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(gw502_proto::MAX_MESSAGE_BYTES);
        Self { inner }
    }

    /// Opens this host's nudge stream, within [`SEND_DEADLINE`] as a delivery.
    pub async fn nudges(&mut self, host_id: &str) -> Result<Streaming<Nudge>, ClientError> {
        let request = NudgeRequest {
            host_id: host_id.to_string(),
        };
        match tokio::time::timeout(SEND_DEADLINE, self.inner.nudges(request)).await {
            Ok(answer) => Ok(answer?.into_inner()),
            Err(_) => Err(ClientError::Status(tonic::Status::deadline_exceeded(
                format!("no answer within {SEND_DEADLINE:?} (connect, TLS handshake and request)"),
            ))),
        }
    }

    /// Delivers one report, within [`SEND_DEADLINE`] (past it, the error is
    /// `DEADLINE_EXCEEDED`, which fails over to the next collector).
    pub async fn send(&mut self, report: HostReport) -> Result<ReportAck, ClientError> {
        match tokio::time::timeout(SEND_DEADLINE, self.inner.report(report)).await {
            Ok(answer) => Ok(answer?.into_inner()),
            Err(_) => Err(ClientError::Status(tonic::Status::deadline_exceeded(
                format!("no answer within {SEND_DEADLINE:?} (connect, TLS handshake and request)"),
            ))),
        }
    }
}

/// The endpoint for `address` with the agent's credentials (see [`CollectorClient::dial`]).
fn endpoint(
    address: &str,
    server_name: Option<&str>,
    credentials: &Credentials,
) -> Result<Endpoint, ClientError> {
    let bad = |reason: String| ClientError::Address {
        address: address.to_string(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(address.to_string())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(30)));
    let uri = endpoint.uri().clone();
    let host = uri.host().ok_or_else(|| bad("no host".into()))?.to_string();
    match credentials {
        Credentials::Mutual { ca, cert, key } => {
            let domain = server_name
                .unwrap_or(&host)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key))
                .domain_name(domain);
            endpoint = endpoint.tls_config(tls).map_err(|e| bad(e.to_string()))?;
        }
        Credentials::Plaintext => {
            if !is_loopback_host(&host) {
                return Err(ClientError::PlaintextNotLoopback(address.to_string()));
            }
        }
    }
    Ok(endpoint)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.clone(),
        source,
    })
}

/// True for `localhost` and loopback IP literals.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Exponential backoff with full jitter, for reconnects.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base`, doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay: uniformly random in `[0, min(max, base * 2^attempt)]`,
    /// but at least a tenth of `base` so retries never spin.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let floor = self.base / 10;
        let jittered = rand::rng().random_range(Duration::ZERO..=ceiling);
        jittered.max(floor)
    }

    /// Forgets past failures after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(2));
            let delay = backoff.next_delay();
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
            assert!(delay >= Duration::from_millis(10));
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn plaintext_is_refused_off_loopback() {
        let err = CollectorClient::new("http://10.0.0.5:7502", &Tls::Plaintext).unwrap_err();
        assert!(matches!(err, ClientError::PlaintextNotLoopback(_)), "{err}");
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("127.0.0.2"));
        assert!(!is_loopback_host("localhost.evil.example"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_collector_that_never_answers_the_handshake_fails_the_send_in_time() {
        // A listener nobody accepts from: the kernel completes TCP, the TLS
        // handshake then waits forever, as behind a firewall that drops.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let credentials = Credentials::Mutual {
            ca: cert.pem().into_bytes(),
            cert: cert.pem().into_bytes(),
            key: key.serialize_pem().into_bytes(),
        };
        let address = format!("https://{}", silent.local_addr().unwrap());
        let mut client = CollectorClient::dial(&address, Some("localhost"), &credentials).unwrap();
        // The paused clock jumps to the next timer, so this takes no real time;
        // without a bound on the handshake the outer guard fires instead.
        let sent = tokio::time::timeout(3 * SEND_DEADLINE, client.send(HostReport::default()))
            .await
            .expect("the send was not bounded");
        let Err(ClientError::Status(status)) = sent else {
            panic!("a silent collector took the report: {sent:?}");
        };
        // DEADLINE_EXCEEDED is a code the failover moves on from.
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    }

    #[tokio::test]
    async fn missing_certificate_names_the_file() {
        let transport = Tls::Mutual {
            ca: "/nonexistent/ca.crt".into(),
            cert: "/nonexistent/a.crt".into(),
            key: "/nonexistent/a.key".into(),
        };
        let err = CollectorClient::new("https://127.0.0.1:7502", &transport).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
    }
}
