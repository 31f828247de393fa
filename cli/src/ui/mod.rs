//! `gw502ctl ui`: the web view. A small HTTP server on loopback that reads
//! the collector with the operator's own mTLS credentials, the way
//! `kubectl proxy` does, and serves server-rendered HTML pages of incidents,
//! hosts and sites. The collector gets no new auth surface: the browser talks
//! only to this process, and this process is just another gw502ctl.
//!
//! Every page is built from the `--json` contract types ([`crate::json`]),
//! so the web view shows exactly what `gw502ctl --json` prints and computes
//! no verdict of its own. Templates are `maud`, which escapes by default.
//! The pages work without JavaScript; one small script only reloads a page
//! when the collector reports an incident change (`/events`, server-sent
//! events from `WatchIncidents`).
//!
//! # Layout
//!
//! - [`server`]: the accept loop, routing, the Host header check, headers.
//! - [`upstream`]: the cached collector connection and the error page when it fails.
//! - [`page`]: the page shell (head, style, navigation) and small helpers.
//! - [`incidents`]: the incident list with its filters.
//! - [`incident`]: one incident: chain, verdict, evidence timeline, deliveries.
//! - [`chain`]: the request chain as inline SVG with the failing hop marked.
//! - [`fleet`]: hosts, one host, sites.
//! - [`live`]: the server-sent events stream and its script.

pub mod chain;
pub mod fleet;
pub mod incident;
pub mod incidents;
pub mod live;
pub mod page;
pub mod server;
pub mod upstream;

use std::net::SocketAddr;

use crate::error::CtlError;

/// Parses `--listen` and refuses a non-loopback address unless
/// `allow_remote`: whoever reaches the web view reads the fleet with the
/// operator's certificate.
pub fn check_listen(listen: &str, allow_remote: bool) -> Result<SocketAddr, CtlError> {
    let addr: SocketAddr = listen.trim().parse().map_err(|_| {
        CtlError::Config(format!(
            "invalid --listen \"{}\": expected an address and port such as 127.0.0.1:8502 or [::1]:8502",
            listen.escape_debug()
        ))
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(CtlError::Config(format!(
            "refusing to serve the web view on {addr}: it is not a loopback address, and anyone \
             who reaches it reads the fleet with your operator certificate \
             (use 127.0.0.1 or [::1], or pass --allow-remote to accept that)"
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_allowed() {
        assert_eq!(
            check_listen("127.0.0.1:8502", false).unwrap().to_string(),
            "127.0.0.1:8502"
        );
        assert!(check_listen("[::1]:0", false).is_ok());
        assert!(check_listen("127.9.9.9:80", false).is_ok());
        let err = check_listen("0.0.0.0:8502", false).unwrap_err();
        assert_eq!(err.exit_code(), 64);
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(check_listen("10.77.0.1:8502", false).is_err());
        assert!(check_listen("[::]:8502", false).is_err());
        assert!(check_listen("0.0.0.0:8502", true).is_ok());
        let bad = check_listen("localhost", false).unwrap_err();
        assert!(bad.to_string().contains("invalid --listen"), "{bad}");
    }
}
