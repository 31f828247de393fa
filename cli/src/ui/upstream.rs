//! The web view's one connection to the collector, and what a page shows
//! when the collector cannot answer.
//!
//! The connection is made on the first request and kept: tonic's channel
//! reconnects by itself, so a collector that restarts is picked up again. A
//! collector that is down, refuses the certificate or answers with an error
//! becomes a page with status 502 that names the collector and the reason, in
//! the same words as the CLI's one-line errors ([`crate::error`]).

use hyper::StatusCode;
use tokio::sync::Mutex;

use crate::client::{self, Connection};
use crate::error::CtlError;
use crate::settings::Settings;

/// The collector as the web view reaches it.
#[derive(Debug)]
pub struct Upstream {
    settings: Settings,
    conn: Mutex<Option<Connection>>,
}

impl Upstream {
    /// A collector reached with `settings`; nothing is connected yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            conn: Mutex::new(None),
        }
    }

    /// The collector URL, for pages.
    pub fn url(&self) -> &str {
        &self.settings.collector
    }

    /// The connection, made now if there is none yet.
    pub async fn connection(&self) -> Result<Connection, CtlError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let conn = client::connect(&self.settings).await?;
        *guard = Some(conn.clone());
        Ok(conn)
    }
}

/// The HTTP status of a page that failed with `err`: 404 for an unknown
/// object, 400 for a bad query, 502 for everything the collector did.
pub fn status_of(err: &CtlError) -> StatusCode {
    match err {
        CtlError::NotFound(_) => StatusCode::NOT_FOUND,
        CtlError::Config(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The heading of the error page for `err`.
pub fn title_of(err: &CtlError) -> &'static str {
    match err {
        CtlError::NotFound(_) => "Not found",
        CtlError::Config(_) => "Bad request",
        CtlError::Unreachable { .. } => "Collector unreachable",
        CtlError::Untrusted { .. }
        | CtlError::BadServerCertificate { .. }
        | CtlError::ClientRejected { .. }
        | CtlError::Unauthenticated { .. }
        | CtlError::PermissionDenied { .. } => "Collector refused the connection",
        _ => "Collector error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_titles() {
        let down = CtlError::Unreachable {
            url: "https://127.0.0.1:7502".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(status_of(&down), StatusCode::BAD_GATEWAY);
        assert_eq!(title_of(&down), "Collector unreachable");
        let nf = CtlError::NotFound("no incident 9".into());
        assert_eq!(status_of(&nf), StatusCode::NOT_FOUND);
        assert_eq!(
            status_of(&CtlError::Config("x".into())),
            StatusCode::BAD_REQUEST
        );
    }
}
