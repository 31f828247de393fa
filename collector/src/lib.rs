//! gw502-collector: stores agent reports, probes sites from the outside,
//! attributes every 5xx to a layer and cause, keeps incidents and routes them.
//!
//! # Layout
//!
//! - [`pki`]: the fleet CA and the certificates of agents, collectors and operators.
//! - [`store`]: reports, sites, observations, incidents and deliveries in SQLite or PostgreSQL.
//! - [`edge`]: probes of public sites and their origins, with the SSRF guard.
//! - [`attribution`]: the pure engine from a site's evidence to verdicts.
//! - [`routing`]: escalation rules, webhook and Alertmanager receivers.
#![warn(missing_docs)]

pub mod attribution;
pub mod edge;
pub mod pki;
pub mod routing;
pub mod store;
