//! gw502-vocab: the words both sides speak. The agent's classifiers return
//! them, the collector's rules match on them, and `gw502ctl --json` and
//! webhooks print them verbatim, so no side compares strings the other wrote.
//!
//! Every word is a contract with users and routing rules (TAXONOMY.md):
//! each enum carries its wire spelling (`as_str`), parses it back
//! (`FromStr`, failing with [`UnknownWord`]) and lists every value (`ALL`).
//!
//! # Layout
//!
//! - [`verdict`]: [`Hop`] (`emitted_by`), [`Layer`], [`Cause`] with its layer,
//!   default owner and default status, and [`Owner`].
//! - [`evidence`]: [`Source`], where an evidence item came from.
//! - [`proxy`]: [`ProxyKind`], the reverse proxies gw502 knows.
//! - [`probe`]: [`Outcome`] and [`Phase`], how a probe attempt ended (docs/PROBES.md).
//! - [`proxy_status`]: the RFC 9209 `Proxy-Status` error types, the cause each names, and
//!   the header's parse.
//! - [`contract`]: the incident JSON of `gw502ctl --json` and webhook payloads.
//! - [`dependency`]: the matcher for app log lines naming a failing dependency.
//! - [`clock`]: epoch milliseconds, the one time unit on the wire.
//! - [`name`]: the one rule for host ids and certificate names.
#![warn(missing_docs)]

#[macro_use]
mod words;

pub mod clock;
pub mod contract;
pub mod dependency;
pub mod evidence;
pub mod name;
pub mod probe;
pub mod proxy;
pub mod proxy_status;
pub mod verdict;

pub use evidence::Source;
pub use probe::{Outcome, Phase};
pub use proxy::ProxyKind;
pub use proxy_status::ProxyStatusError;
pub use verdict::{Cause, Hop, Layer, Owner};
pub use words::UnknownWord;
