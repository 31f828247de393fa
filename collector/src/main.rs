//! `gw502-collector`: parses arguments, sets up logging, loads the config and
//! hands a bound listener to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gw502_collector::args::{Args, Command, ConfigFile};
use gw502_collector::config::Config;
use gw502_daemon::settings::EXIT_CONFIG;
use gw502_daemon::telemetry;

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
            Ok(config) => run(config, path).await,
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

/// Serves until SIGTERM (or Ctrl-C), which drains within `shutdown_grace`
/// and exits 0; SIGHUP reloads `path` (sites and routing; a bad file is
/// refused with every problem logged and the running config stays).
async fn run(config: Config, path: PathBuf) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Before anything slow: SIGHUP's default action would end the process.
    let hangups = signal(SignalKind::hangup())?;
    if let Some(addr) = config.metrics_listen {
        telemetry::serve_metrics(addr)?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let (reload_tx, reloads) = tokio::sync::mpsc::channel(4);
    let watcher = tokio::spawn(reload_on_hangup(hangups, path, reload_tx));
    let served = gw502_collector::server::serve(
        config,
        listener,
        telemetry::shutdown_signal(),
        Some(reloads),
    )
    .await;
    watcher.abort();
    served?;
    Ok(())
}

/// Reads the config file again on every SIGHUP and hands a good one to the
/// server; a bad one is logged (every problem) and dropped.
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    path: PathBuf,
    reloads: tokio::sync::mpsc::Sender<Config>,
) {
    while hangups.recv().await.is_some() {
        tracing::info!(path = %path.display(), "reloading config");
        if let Ok(config) = gw502_collector::reload::load(&path)
            && reloads.send(config).await.is_err()
        {
            return;
        }
    }
}
