//! The mTLS gRPC connection to the collector's Query service.
//!
//! The channel trusts only the fleet CA, presents the operator certificate,
//! verifies the collector's name against the URL's host, and bounds connect,
//! handshake and unary calls in time and replies in size.

use std::time::Duration;

use gw502_proto::v1::query_client::QueryClient;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri};

use crate::error::{self, Context, CtlError};
use crate::settings::Settings;

/// TCP connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of connect plus TLS and HTTP/2 handshakes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound of one unary call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A connected Query client and what its errors may refer to.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The generated client.
    pub query: QueryClient<Channel>,
    /// URL, CA, certificate and role for error messages.
    pub ctx: Context,
}

impl Connection {
    /// Maps a status of a call on this connection.
    pub fn error(&self, status: &tonic::Status, not_found: &str) -> CtlError {
        error::from_status(status, &self.ctx, not_found)
    }
}

/// A unary request with [`CALL_TIMEOUT`].
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(CALL_TIMEOUT);
    r
}

/// The TLS server name for a collector URL: its host, without IPv6 brackets.
pub fn server_name(url: &str) -> Result<(Uri, String), CtlError> {
    let bad = |why: &str| {
        CtlError::Config(format!(
            "invalid collector URL \"{}\": {why} (expected e.g. https://127.0.0.1:7502)",
            url.escape_debug()
        ))
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("the scheme must be https"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((uri, host))
}

/// Connects to the collector named by `settings`.
pub async fn connect(settings: &Settings) -> Result<Connection, CtlError> {
    let (uri, host) = server_name(&settings.collector)?;
    let load = |what: &str, path: &std::path::Path| {
        gw502_pki::load_pem(path).map_err(|e| CtlError::Config(format!("cannot load {what}: {e}")))
    };
    let ca = load("CA certificate", &settings.ca)?;
    let cert = load("client certificate", &settings.cert)?;
    let key = load("client key", &settings.key)?;
    let role = CertificateDer::pem_slice_iter(&cert)
        .next()
        .and_then(|c| c.ok())
        .and_then(|der| gw502_pki::identity_from_der(&der).ok())
        .map(|id| id.role.as_str().to_owned());
    let ctx = Context {
        url: settings.collector.clone(),
        ca: settings.ca.clone(),
        cert: settings.cert.clone(),
        role,
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(cert, key))
        .domain_name(host)
        .timeout(HANDSHAKE_TIMEOUT);
    let endpoint = Endpoint::from(uri)
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_config(tls)
        .map_err(|e| {
            CtlError::Config(format!(
                "invalid TLS settings: {}",
                crate::render::escape(&e.to_string())
            ))
        })?;
    let channel = match tokio::time::timeout(HANDSHAKE_TIMEOUT, endpoint.connect()).await {
        Ok(Ok(channel)) => channel,
        Ok(Err(e)) => return Err(error::from_transport(&e, &ctx)),
        Err(_) => {
            return Err(CtlError::Unreachable {
                url: ctx.url.clone(),
                reason: "timed out".into(),
            });
        }
    };
    let query = QueryClient::new(channel)
        .max_decoding_message_size(gw502_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(gw502_proto::MAX_MESSAGE_BYTES);
    Ok(Connection { query, ctx })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_urls() {
        assert_eq!(
            server_name("https://127.0.0.1:7502").unwrap().1,
            "127.0.0.1"
        );
        assert_eq!(server_name("https://[::1]:7502").unwrap().1, "::1");
        assert_eq!(
            server_name("https://collector.example").unwrap().1,
            "collector.example"
        );
        let err = server_name("http://127.0.0.1:7502").unwrap_err();
        assert_eq!(err.exit_code(), 64);
        assert!(err.to_string().contains("https"), "{err}");
        assert!(server_name("not a url").is_err());
    }
}
