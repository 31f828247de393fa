//! The agent's two probe sources, built on the shared `gw502-probe` crate:
//! [`ProbeSource`] probes every upstream target the proxy configs name (the
//! `curl -i http://127.0.0.1:3000` an operator would run), and
//! [`CrossProbeSource`] fetches public site URLs as an extra vantage point.
//! Each lives in its own module, [`direct`] and [`cross`]; [`trust`] reads
//! the CA file a proxy trusts for an upstream, for the direct probe.

pub mod cross;
pub mod direct;
pub mod trust;

#[cfg(test)]
mod tests;

pub use cross::{CrossProbeSite, CrossProbeSource};
pub use direct::{ProbeSettings, ProbeSource};
