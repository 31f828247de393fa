//! The command line of `gw502-collector`, declared with clap derive. It lives
//! in the library so that `main` parses it and the packaging generator
//! (`packaging/`) builds the man page and shell completions from the very
//! same [`command`].

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use gw502_daemon::telemetry;

/// gw502 collector: stores agent reports, probes sites from the outside,
/// attributes every 5xx to a layer and cause, keeps incidents and routes them.
/// (For one machine with a local agent, see `gw502-all-in-one`.)
#[derive(Debug, Parser)]
#[command(
    name = "gw502-collector",
    version,
    after_help = "Examples:\n  gw502-collector run --config /etc/gw502/collector.toml\n  gw502-collector check-config --config /etc/gw502/collector.toml"
)]
pub struct Args {
    /// Log format.
    #[command(flatten)]
    pub log: telemetry::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The collector's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a collector from a config file (every key is documented in deploy/collector.toml).
    Run {
        /// The config file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Validate a config file and exit (64 with every problem listed when bad).
    CheckConfig {
        /// The config file.
        #[command(flatten)]
        config: ConfigFile,
    },
}

/// The config file argument of `run` and `check-config`.
#[derive(Debug, clap::Args)]
pub struct ConfigFile {
    /// Config file.
    #[arg(
        long,
        short,
        env = "GW502_COLLECTOR_CONFIG",
        default_value = "/etc/gw502/collector.toml"
    )]
    pub config: PathBuf,
}

/// The collector's full clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Args::command()
}
