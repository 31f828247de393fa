//! gw502-collector: stores agent reports, probes sites from the outside,
//! attributes every 5xx to a layer and cause, keeps incidents and routes them.
//!
//! # Layout
//!
//! - [`store`]: reports, sites, observations, incidents and deliveries in SQLite or PostgreSQL.
//! - [`edge`]: probes of public sites and their origins, with the SSRF guard.
//! - [`attribution`]: the pure engine from a site's evidence to verdicts (the
//!   `gw502-attribution` crate, re-exported).
//! - [`routing`]: escalation rules, webhook and Alertmanager receivers.
//! - [`args`]: the command line (also read by the man page and completion generator).
//! - [`config`]: the collector config; [`server`]: `run(config, listener, shutdown)`;
//!   [`reload`]: SIGHUP puts a new config's sites and routing in force.
//! - [`auth`]: roles from client certificates; [`ingest`] and [`query`]: the two gRPC services.
//! - [`tls`]: the mTLS listener; [`revocation`]: the CRL in its client verifier, reloaded live;
//!   [`limits`]: report size limits and the log line of every size refusal.
//! - [`hub`]: shared state; [`state`]: folds stored reports into a host's current picture;
//!   [`sites`]: configured and discovered sites; [`incidents`]: evaluation and incident lifecycle;
//!   [`edge_loop`]: the periodic probe, evaluation, change-feed and retention loops;
//!   [`deliveries`]: the escalation delivery log in the store and its sender;
//!   [`leases`]: which sites this collector probes and evaluates.
//! - [`tenancy`]: labels of sites and hosts, and what a scoped operator may see.
#![warn(missing_docs)]

pub mod args;
pub mod auth;
pub mod config;
pub mod deliveries;
pub mod edge;
pub mod edge_loop;
pub mod hub;
pub mod incidents;
pub mod ingest;
pub mod leases;
pub mod limits;
pub mod query;
pub mod reload;
pub mod revocation;
pub mod routing;
pub mod server;
pub mod sites;
pub mod state;
pub mod store;
pub mod tenancy;
pub mod tls;

pub use gw502_attribution as attribution;
