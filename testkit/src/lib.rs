//! gw502-testkit: one builder for the evidence of failure scenarios, used
//! only as a dev-dependency. The attribution table (`gw502-attribution`'s
//! unit tests) and the integration tests that send reports to a real
//! collector (`gw502-tests`, `causes`) build their `HostReport`s with the
//! same code, so a scenario means the same thing in both.
//!
//! The two suites differ only in time: the table judges evidence at a fixed
//! instant, the integration tests at the wall clock. A [`Clock`] passed to
//! every builder carries that difference; every time a builder writes is an
//! offset from it.
//!
//! # Layout
//!
//! - [`clock`]: [`Clock`], "now" and when the failure started.
//! - [`host`]: [`Host`], a `HostReport` under construction (proxy config,
//!   units, listeners, log signals, access counts, probes, journal, DNS,
//!   cross-probes), and the usual host shapes ([`web`], [`php`], [`nginx`]).
//! - [`container`]: containers of the Docker Engine on a [`Host`].
//! - [`observe`]: probe observations of a site ([`observation`]) and the
//!   nginx error-line shape ([`ngx_line`]).
//! - [`tmpfs`]: a small tmpfs for tests of full disks.
#![warn(missing_docs)]

pub mod clock;
pub mod container;
pub mod host;
pub mod observe;
pub mod tmpfs;

pub use clock::Clock;
pub use host::{Host, NOISE, host, nginx, php, web};
pub use observe::{ngx_line, observation};
