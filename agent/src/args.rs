//! The command line of `gw502-agent`, declared with clap derive. It lives in
//! the library so that `main` parses it and the packaging generator
//! (`packaging/`) builds the man page and shell completions from the very
//! same [`command`].

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};
use gw502_daemon::telemetry::LogArgs;

/// gw502 host agent: gathers the evidence behind 502s on this host
/// (systemd, listening sockets, journal, proxy config, upstream probes, DNS,
/// proxy logs) and reports it to the gw502 collector over mTLS.
#[derive(Debug, Parser)]
#[command(
    name = "gw502-agent",
    version,
    after_help = "Examples:\n  gw502-agent --config /etc/gw502/agent.toml\n  gw502-agent snapshot\n  gw502-agent snapshot --json | jq '.probes'"
)]
pub struct Args {
    /// Config file (every key is documented in deploy/agent.toml).
    #[arg(
        long,
        short,
        env = "GW502_AGENT_CONFIG",
        default_value = "/etc/gw502/agent.toml",
        global = true
    )]
    pub config: PathBuf,
    /// Log format.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The agent's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report to the collector every interval (the default).
    Run,
    /// Gather once and print what the agent would report: ss + systemctl +
    /// curl + journalctl + dig + nginx -t in one command.
    Snapshot {
        /// Print the report as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config file and exit.
    CheckConfig,
}

/// The agent's full clap command, for man pages and completions.
pub fn command() -> clap::Command {
    Args::command()
}
