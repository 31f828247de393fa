//! gw502-probe: the probe code the agent and the collector share. One HTTP
//! exchange, bounded in time and bytes, over TCP, TLS or a unix socket, in
//! HTTP or FastCGI, that ends in one outcome word of `docs/PROBES.md`
//! ([`Outcome`]), and the fingerprint of who made the response.
//!
//! The agent uses it for direct probes of upstreams (`curl -i
//! http://127.0.0.1:3000`) and cross-probes of public sites; the collector
//! for edge probes of public URLs and origins. Transport failures are
//! classified by errno the way pingora's `ErrorType` separates them, with the
//! phase where they happened.
//!
//! # Layout
//!
//! - [`outcome`]: the errno classifier into `gw502_vocab::{Outcome, Phase}`.
//! - [`head`]: the pure response-head parser and the bounded head reader.
//! - [`fastcgi`]: FastCGI records, encoded and decoded by pure functions.
//! - [`tls`]: rustls with a verifier that reports instead of refusing.
//! - [`connect`]: resolution and bounded connect over TCP or unix sockets.
//! - [`client`]: the HTTP, HTTPS and FastCGI probe clients ([`probe()`]).
//! - [`fetch`]: [`fetch()`], the bounded GET of a public URL with timing.
//! - [`fingerprint`]: who made an error page (a proxy, a CDN, the app).
//! - [`observation`]: a fetch as an `EdgeObservation`.
//! - [`proxy_status`]: the RFC 9209 `Proxy-Status` header.
//! - `testing` (feature `testing`): real misbehaving servers, nginx and
//!   PHP-FPM for tests of the crates that probe.
#![warn(missing_docs)]

pub mod client;
pub mod connect;
pub mod fastcgi;
pub mod fetch;
pub mod fingerprint;
#[cfg(test)]
mod fingerprint_recorded;
pub mod head;
pub mod observation;
pub mod outcome;
pub mod proxy_status;
pub mod tls;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use client::{ProbeRequest, ProbeResult, Protocol, probe};
pub use connect::Endpoint;
pub use fetch::{FetchRequest, Fetched, Timing, fetch};
pub use fingerprint::{Fingerprint, fingerprint};
pub use head::{HeadError, ResponseHead, parse_response_head};
pub use outcome::{Failure, Outcome, Phase};
pub use tls::TlsPolicy;
