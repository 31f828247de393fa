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
//!   [`systemd`], [`journal`], [`probe`], [`dns`], [`proxy_log`], [`varnish`],
//!   [`containers`] (the Docker Engine API; it also maps published ports to
//!   their container).
//! - [`report`]: runs the sources in order into a `HostReport`, and sends only what changed.
//! - [`bound`]: keeps every report under a byte bound.
//! - [`spool`]: the bounded on-disk queue that survives collector outages,
//!   with a memory overflow for reports a full disk refuses.
//! - [`client`]: the mTLS gRPC connection to one collector, with backoff;
//!   [`failover`]: several collectors, sticking to one and failing over.
//! - [`pipeline`]: the sources wired together; [`run`]: the report loop; [`snapshot`]: the local one-shot view.
//! - [`args`]: the command line (also read by the man page and completion generator).
//! - [`config`]: the agent config (its plumbing, logs and metrics come from `gw502-daemon`);
//!   [`log_limit`]: rate-limited warnings for repeating failures.
#![warn(missing_docs)]

pub mod args;
pub mod bound;
pub mod client;
pub mod config;
pub mod containers;
pub mod dns;
pub mod failover;
pub mod journal;
pub mod log_limit;
pub mod pipeline;
pub mod probe;
pub mod proxy_config;
pub mod proxy_log;
pub mod report;
pub mod run;
pub mod snapshot;
pub mod sockets;
pub mod source;
pub mod spool;
pub mod systemd;
pub mod varnish;
