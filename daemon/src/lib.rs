//! gw502-daemon: what the agent and the collector daemons share, so neither
//! depends on the other.
//!
//! # Layout
//!
//! - [`exposure`]: a warning at start for secrets readable by everyone.
//! - [`settings`]: layered config files (raw serde struct, `validate()`,
//!   typed config) with every problem reported at once with its key, exit
//!   code 64, and the TLS and duration/size settings both daemons use.
//! - [`telemetry`]: structured logs, the opt-in Prometheus endpoint, and the
//!   shutdown signal.
#![warn(missing_docs)]

pub mod exposure;
pub mod settings;
pub mod telemetry;
