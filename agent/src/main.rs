//! `gw502-agent`: parses arguments, sets up logging, loads the config and
//! hands over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gw502_agent::config::Config;
use gw502_daemon::settings::EXIT_CONFIG;
use gw502_daemon::telemetry::LogArgs;

/// gw502 host agent: gathers the evidence behind 502s on this host
/// (systemd, listening sockets, journal, proxy config, upstream probes, DNS,
/// proxy logs) and reports it to the gw502 collector over mTLS.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  gw502-agent --config /etc/gw502/agent.toml\n  gw502-agent snapshot\n  gw502-agent snapshot --json | jq '.probes'"
)]
struct Args {
    /// Config file (every key is documented in deploy/agent.toml).
    #[arg(
        long,
        short,
        env = "GW502_AGENT_CONFIG",
        default_value = "/etc/gw502/agent.toml",
        global = true
    )]
    config: PathBuf,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    gw502_daemon::telemetry::init_logging(args.log.log_format);
    let command = args.command.unwrap_or(Command::Run);
    let config = match &command {
        // A snapshot works without a config: it needs no collector.
        Command::Snapshot { .. } if !args.config.exists() => Config::local_default(),
        _ => match Config::load(&args.config) {
            Ok(config) => {
                gw502_daemon::exposure::warn_exposed(&args.config);
                config
            }
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(EXIT_CONFIG as u8);
            }
        },
    };
    let result = match command {
        Command::CheckConfig => {
            println!("{}: ok", args.config.display());
            Ok(())
        }
        Command::Snapshot { json } => gw502_agent::snapshot::print(&config, json).await,
        Command::Run => run(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gw502-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics_listen {
        gw502_daemon::telemetry::serve_metrics(addr)?;
    }
    tracing::info!(host_id = %config.host_id, collectors = ?config.collectors, "agent starting");
    let agent = gw502_agent::run::Agent::new(config)?;
    agent
        .run(gw502_daemon::telemetry::shutdown_signal())
        .await?;
    Ok(())
}
