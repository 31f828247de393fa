//! gw502-packaging: the man pages, shell completions and `.deb` packages of gw502's
//! three binaries, built from the binaries' own clap commands and the files in
//! `deploy/`. `cargo run -p gw502-packaging -- deb` builds the release binaries and
//! writes `target/debian/*.deb`; `-- docs --out DIR` writes only the pages and
//! completions.
//!
//! # Layout
//!
//! - [`spec`]: the three packages: binary, unit, user, example config, description.
//! - [`pages`]: man pages (`clap_mangen`) and bash/zsh/fish completions (`clap_complete`).
//! - [`scripts`]: the maintainer scripts of the daemon packages.
//! - [`deb`]: staging a package tree and building it with `dpkg-deb`.
//! - [`files`]: filesystem steps and tool runs with context in their errors;
//!   [`error`]: what can go wrong.
#![warn(missing_docs)]

pub mod deb;
pub mod error;
pub mod files;
pub mod pages;
pub mod scripts;
pub mod spec;

pub use error::PackagingError;
