//! Direct probes of the upstreams a proxy targets (the `curl -i
//! http://127.0.0.1:3000` an operator would run), the shared HTTP fetch used
//! for public URLs, the fingerprints of error pages, and the agent's
//! cross-probes of public sites.
//!
//! Every attempt ends in one outcome word of `docs/PROBES.md` ([`Outcome`]);
//! transport failures are classified by errno the way pingora's `ErrorType`
//! separates them, with the phase where they happened.
//!
//! - [`outcome`]: the outcome words and the errno classifier.
//! - [`head`]: the pure response-head parser and the bounded head reader.
//! - [`fastcgi`]: FastCGI records, encoded and decoded by pure functions.
//! - [`tls`]: rustls with a verifier that reports instead of refusing.
//! - [`connect`]: resolution and bounded connect over TCP or unix sockets.
//! - [`client`]: the HTTP, HTTPS and FastCGI probe clients.
//! - [`direct`]: [`ProbeSource`], probing every target in the scope.
//! - [`fetch`]: [`fetch()`], the bounded GET of a public URL with timing.
//! - [`fingerprint`]: who made an error page (nginx, HAProxy, a CDN, the app).
//! - [`cross`]: [`CrossProbeSource`], public-site probes from this host.

pub mod client;
pub mod connect;
pub mod cross;
pub mod direct;
pub mod fastcgi;
pub mod fetch;
pub mod fingerprint;
pub mod head;
pub mod outcome;
pub mod tls;

#[cfg(test)]
mod tests;

pub use client::{ProbeRequest, ProbeResult, Protocol, probe};
pub use connect::Endpoint;
pub use cross::{CrossProbeSite, CrossProbeSource};
pub use direct::{ProbeSettings, ProbeSource};
pub use fetch::{FetchRequest, Fetched, Timing, fetch};
pub use fingerprint::{Fingerprint, fingerprint};
pub use head::{HeadError, ResponseHead, parse_response_head};
pub use outcome::{Failure, Outcome, Phase};
pub use tls::TlsPolicy;
