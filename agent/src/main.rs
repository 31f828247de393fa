//! `gw502-agent`: parses arguments, sets up logging, loads the config and
//! hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use gw502_agent::args::{Args, Command};
use gw502_agent::config::Config;
use gw502_daemon::settings::EXIT_CONFIG;

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
