//! What can go wrong while generating pages or building a package: one enum whose
//! variants carry the path or the tool and its stderr.

use std::path::PathBuf;

/// What can go wrong while generating pages or building a package.
#[derive(Debug, thiserror::Error)]
pub enum PackagingError {
    /// A filesystem step failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A tool could not be started (not installed?).
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The tool.
        tool: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        /// The tool.
        tool: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A man page could not be rendered.
    #[error("render {what}: {source}")]
    Render {
        /// Which page.
        what: String,
        /// The writer's error.
        source: std::io::Error,
    },
    /// A built binary the package needs is missing.
    #[error("{path} is missing: build it first (cargo build --release -p {package})")]
    MissingBinary {
        /// Where it was looked for.
        path: PathBuf,
        /// The package it belongs to.
        package: String,
    },
    /// A tool printed something the build cannot use.
    #[error("{tool}: unexpected output {output:?}")]
    Output {
        /// The tool.
        tool: String,
        /// What it printed.
        output: String,
    },
}
