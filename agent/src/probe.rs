//! The agent's two probe sources, built on the shared `gw502-probe` crate:
//! [`ProbeSource`] probes every upstream target the proxy configs name (the
//! `curl -i http://127.0.0.1:3000` an operator would run), and
//! [`CrossProbeSource`] fetches public site URLs as an extra vantage point.
//! Each lives in its own module, [`direct`] and [`cross`].

pub mod cross;
pub mod direct;

#[cfg(test)]
mod tests;

pub use cross::{CrossProbeSite, CrossProbeSource};
pub use direct::{ProbeSettings, ProbeSource};
