//! `gw502-all-in-one`: parses arguments, sets up logging and runs the
//! collector and the local agent until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gw502_all_in_one::{AllInOne, run};
use gw502_daemon::settings::EXIT_CONFIG;
use gw502_daemon::telemetry;

/// gw502 on one machine: a collector on embedded SQLite plus an agent for
/// this host, over mTLS on loopback. Creates the PKI in DIR if absent; then
/// `gw502ctl --data-dir DIR hosts` and `gw502ctl --data-dir DIR incidents`.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  gw502-all-in-one --data-dir ./gw502-data\n  gw502ctl --data-dir ./gw502-data incidents"
)]
struct Args {
    /// Where PKI, database and agent state live.
    #[arg(long, env = "GW502_DATA_DIR", default_value = "./gw502-data")]
    data_dir: PathBuf,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:7502")]
    listen: SocketAddr,
    /// Agent report interval (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime_duration)]
    interval: Duration,
    #[command(flatten)]
    log: telemetry::LogArgs,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// jemalloc, as in the collector binary (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init_logging(args.log.log_format);
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "gw502-all-in-one listens on loopback only, not {}",
            args.listen
        );
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    let options = AllInOne {
        data_dir: args.data_dir,
        listen: args.listen,
        interval: args.interval,
    };
    match run(options, telemetry::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gw502-all-in-one: {error:#}");
            ExitCode::FAILURE
        }
    }
}
