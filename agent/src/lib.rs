//! gw502-agent: gathers the evidence an operator would collect by hand on a
//! host that serves 502s (`systemctl status`, `ss -tlnp`, `journalctl`,
//! `curl` of the backend, `dig`, `nginx -t`, the proxy's error log) and
//! reports it to the collector over mTLS gRPC.
//!
//! # Layout
//!
//! - [`source`]: the `Source` trait every evidence source implements, and the
//!   `Scope` earlier sources hand to later ones.
//! - One module per evidence source: [`proxy_config`], [`sockets`],
//!   [`systemd`], [`journal`], [`probe`], [`dns`], [`proxy_log`].
#![warn(missing_docs)]

pub mod dns;
pub mod journal;
pub mod probe;
pub mod proxy_config;
pub mod proxy_log;
pub mod sockets;
pub mod source;
pub mod systemd;
