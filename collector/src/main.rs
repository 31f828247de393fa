//! `gw502-collector`: parses arguments, sets up logging, loads the config and
//! hands a bound listener to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gw502_collector::config::Config;
use gw502_daemon::settings::EXIT_CONFIG;
use gw502_daemon::telemetry;

/// gw502 collector: stores agent reports, probes sites from the outside,
/// attributes every 5xx to a layer and cause, keeps incidents and routes them.
/// (For one machine with a local agent, see `gw502-all-in-one`.)
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  gw502-collector run --config /etc/gw502/collector.toml\n  gw502-collector check-config --config /etc/gw502/collector.toml"
)]
struct Args {
    #[command(flatten)]
    log: telemetry::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a collector from a config file (every key is documented in deploy/collector.toml).
    Run {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Validate a config file and exit (64 with every problem listed when bad).
    CheckConfig {
        #[command(flatten)]
        config: ConfigFile,
    },
}

/// The config file argument of `run` and `check-config`.
#[derive(Debug, clap::Args)]
struct ConfigFile {
    /// Config file.
    #[arg(
        long,
        short,
        env = "GW502_COLLECTOR_CONFIG",
        default_value = "/etc/gw502/collector.toml"
    )]
    config: PathBuf,
}

/// jemalloc: the evaluator decodes and folds many short-lived reports, and
/// glibc's allocator spent about 40% of the collector's CPU on them
/// (`malloc_consolidate`, `unlink_chunk`; see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init_logging(args.log.log_format);
    raise_open_files_limit();
    let result = match args.command {
        Command::CheckConfig {
            config: ConfigFile { config: path },
        } => match load(&path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                Ok(())
            }
            Err(code) => return code,
        },
        Command::Run {
            config: ConfigFile { config: path },
        } => match load(&path) {
            Ok(config) => run(config).await,
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gw502-collector: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a config, printing every problem and giving exit code 64 when bad.
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    let config = Config::load(path).map_err(|error| {
        eprintln!("{error}");
        ExitCode::from(EXIT_CONFIG as u8)
    })?;
    gw502_daemon::exposure::warn_exposed(path);
    Ok(config)
}

/// Every agent holds a connection, and systemd starts services with a soft
/// limit of 1,024 open files: take the hard limit, so the fleet size is not
/// capped by a default.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(error) => tracing::warn!(%error, soft, hard, "cannot raise the open files limit"),
        },
        Ok((soft, _)) => tracing::debug!(limit = soft, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot read the open files limit"),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if let Some(addr) = config.metrics_listen {
        telemetry::serve_metrics(addr)?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    gw502_collector::server::run(config, listener, telemetry::shutdown_signal()).await?;
    Ok(())
}
