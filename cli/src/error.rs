//! gw502ctl's errors: one line each, no transport internals, and an exit code.
//!
//! Transport failures are classified the way pingora separates error kinds:
//! the source chain is searched for the OS error or the rustls error that
//! explains it, and the message names what the operator should fix (the URL,
//! the CA file, the certificate's role).

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use rustls::{AlertDescription, CertificateError};

use crate::render::escape;

/// Exit code of usage and configuration errors (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code of runtime errors.
pub const EXIT_RUNTIME: u8 = 1;

/// What went wrong, ready to print as one line.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// Nothing answers at the collector's address.
    #[error("cannot reach collector at {url}: {reason}")]
    Unreachable {
        /// Collector URL.
        url: String,
        /// `connection refused`, `timed out`, ...
        reason: String,
    },
    /// The collector's certificate does not chain to our CA.
    #[error("collector certificate at {url} is not signed by CA {}", ca.display())]
    Untrusted {
        /// Collector URL.
        url: String,
        /// The CA file used.
        ca: PathBuf,
    },
    /// The collector's certificate is unusable for another reason.
    #[error("collector certificate at {url} is not acceptable: {reason}")]
    BadServerCertificate {
        /// Collector URL.
        url: String,
        /// What is wrong (expired, wrong name, ...).
        reason: String,
    },
    /// The collector refused our client certificate during the handshake.
    #[error("collector at {url} rejected the client certificate {}: {reason}", cert.display())]
    ClientRejected {
        /// Collector URL.
        url: String,
        /// The certificate presented.
        cert: PathBuf,
        /// The TLS alert, in words.
        reason: String,
    },
    /// The collector authenticated us but our role may not query.
    #[error(
        "this certificate (role {role}) may not query the collector; use an operator certificate"
    )]
    PermissionDenied {
        /// Role read from our certificate.
        role: String,
    },
    /// The collector did not accept our credentials.
    #[error("the collector did not authenticate this certificate ({}): {message}", cert.display())]
    Unauthenticated {
        /// The certificate presented.
        cert: PathBuf,
        /// The collector's words (escaped).
        message: String,
    },
    /// The requested object does not exist, e.g. `no incident 42`.
    #[error("{0}")]
    NotFound(String),
    /// The collector answered with another error.
    #[error("collector error ({code}): {message}")]
    Remote {
        /// gRPC code name.
        code: String,
        /// The collector's words (escaped).
        message: String,
    },
    /// Local PKI operation failed.
    #[error(transparent)]
    Pki(#[from] gw502_pki::PkiError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CtlError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Config(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }
}

/// What an error message may refer to.
#[derive(Debug, Clone)]
pub struct Context {
    /// Collector URL.
    pub url: String,
    /// CA file.
    pub ca: PathBuf,
    /// Client certificate file.
    pub cert: PathBuf,
    /// Role of the client certificate, when it could be read.
    pub role: Option<String>,
}

/// Classifies a transport failure (connect, TLS, HTTP/2) by its source chain.
pub fn from_transport(err: &(dyn StdError + 'static), ctx: &Context) -> CtlError {
    let mut texts = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(found) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .and_then(|tls| from_rustls(tls, ctx))
            {
                return found;
            }
            if let Some(reason) = io_reason(io.kind()) {
                return unreachable(ctx, reason);
            }
        }
        if let Some(found) = e
            .downcast_ref::<rustls::Error>()
            .and_then(|tls| from_rustls(tls, ctx))
        {
            return found;
        }
        texts.push(e.to_string());
        cur = e.source();
    }
    let all = texts.join(": ").to_ascii_lowercase();
    for (needle, reason) in [
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network is unreachable"),
        ("dns error", "name does not resolve"),
        ("failed to lookup address", "name does not resolve"),
        ("connection reset", "connection reset"),
    ] {
        if all.contains(needle) {
            return unreachable(ctx, reason);
        }
    }
    // The innermost error is the most specific one.
    let last = texts
        .last()
        .map(|t| escape(t).into_owned())
        .unwrap_or_default();
    unreachable(ctx, &last)
}

/// Maps a gRPC status from the collector; `not_found` is the message for
/// `NOT_FOUND` (e.g. `no incident 42`).
pub fn from_status(status: &tonic::Status, ctx: &Context, not_found: &str) -> CtlError {
    use tonic::Code;
    let message = escape(status.message()).into_owned();
    match status.code() {
        Code::PermissionDenied => CtlError::PermissionDenied {
            role: ctx.role.clone().unwrap_or_else(|| "unknown".into()),
        },
        Code::Unauthenticated => CtlError::Unauthenticated {
            cert: ctx.cert.clone(),
            message,
        },
        Code::NotFound => CtlError::NotFound(not_found.to_owned()),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
            if status.source().is_some() =>
        {
            status
                .source()
                .map(|s| from_transport(s, ctx))
                .unwrap_or_else(|| unreachable(ctx, "unavailable"))
        }
        Code::Unavailable => unreachable(ctx, &message),
        Code::DeadlineExceeded => unreachable(ctx, "timed out"),
        code => CtlError::Remote {
            code: format!("{code:?}"),
            message,
        },
    }
}

fn from_rustls(err: &rustls::Error, ctx: &Context) -> Option<CtlError> {
    let server_cert = |reason: &str| CtlError::BadServerCertificate {
        url: ctx.url.clone(),
        reason: reason.to_owned(),
    };
    Some(match err {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                CtlError::Untrusted {
                    url: ctx.url.clone(),
                    ca: ctx.ca.clone(),
                }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                server_cert("it is not valid for this host name or address")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                server_cert("it has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                server_cert("it is not valid yet (check the clocks)")
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                server_cert("it is not a server certificate (issue a collector certificate)")
            }
            _ => server_cert("invalid certificate"),
        },
        rustls::Error::AlertReceived(alert) => CtlError::ClientRejected {
            url: ctx.url.clone(),
            cert: ctx.cert.clone(),
            reason: alert_reason(*alert),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            CtlError::Unreachable {
                url: ctx.url.clone(),
                reason: "the peer does not speak TLS (is this the collector's gRPC port?)".into(),
            }
        }
        _ => return None,
    })
}

fn alert_reason(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::UnknownCA | AlertDescription::BadCertificate => {
            "it is not signed by the collector's CA".into()
        }
        AlertDescription::CertificateRequired => "a client certificate is required".into(),
        AlertDescription::CertificateExpired => "it has expired".into(),
        AlertDescription::UnsupportedCertificate => "it is not a client certificate".into(),
        other => format!("TLS alert {}", format!("{other:?}").to_ascii_lowercase()),
    }
}

fn io_reason(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        K::TimedOut => "timed out",
        K::HostUnreachable => "no route to host",
        K::NetworkUnreachable => "network is unreachable",
        K::ConnectionReset => "connection reset",
        K::AddrNotAvailable => "address not available",
        _ => return None,
    })
}

fn unreachable(ctx: &Context, reason: &str) -> CtlError {
    CtlError::Unreachable {
        url: ctx.url.clone(),
        reason: reason.to_owned(),
    }
}

/// An error reading a local credential file.
pub fn credential(what: &str, path: &Path, err: impl std::fmt::Display) -> CtlError {
    CtlError::Config(format!("cannot load {what} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            url: "https://127.0.0.1:7502".into(),
            ca: "/pki/ca.crt".into(),
            cert: "/pki/agents/a.crt".into(),
            role: Some("agent".into()),
        }
    }

    #[test]
    fn io_and_tls_errors_are_classified() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            from_transport(&refused, &ctx()).to_string(),
            "cannot reach collector at https://127.0.0.1:7502: connection refused"
        );
        let untrusted = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            from_transport(&untrusted, &ctx()).to_string(),
            "collector certificate at https://127.0.0.1:7502 is not signed by CA /pki/ca.crt"
        );
        let alert = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert!(
            from_transport(&alert, &ctx())
                .to_string()
                .contains("rejected the client certificate /pki/agents/a.crt")
        );
    }

    #[test]
    fn statuses_are_mapped() {
        let denied = tonic::Status::permission_denied("role agent may not call Query");
        assert_eq!(
            from_status(&denied, &ctx(), "").to_string(),
            "this certificate (role agent) may not query the collector; use an operator certificate"
        );
        let nf = tonic::Status::not_found("incident");
        assert_eq!(
            from_status(&nf, &ctx(), "no incident 42").to_string(),
            "no incident 42"
        );
        let hostile = tonic::Status::internal("boom\x1b[2J\nsecond line");
        let msg = from_status(&hostile, &ctx(), "").to_string();
        assert!(!msg.contains('\x1b') && !msg.contains('\n'), "{msg}");
        assert_eq!(CtlError::Config("x".into()).exit_code(), 64);
        assert_eq!(from_status(&hostile, &ctx(), "").exit_code(), 1);
    }
}
