//! gw502ctl: the operator CLI of gw502. It reads incidents, hosts, sites and
//! deliveries from the collector's Query service over mTLS, asks it to
//! explain a URL, serves the same as web pages on loopback (`gw502ctl ui`),
//! and bootstraps the fleet PKI offline.
//!
//! # Layout
//!
//! - [`args`]: the clap command line.
//! - [`settings`]: flags > environment > config file > all-in-one data dir.
//! - [`client`]: the mTLS tonic channel to the collector.
//! - [`error`]: one-line errors and exit codes, transport failures classified.
//! - [`commands`]: what each command does.
//! - [`render`]: tables, the request chain, escaping of remote text.
//! - [`json`]: the `--json` contract (docs/JSON.md).
//! - [`customer`]: `explain --for customer`, the text a support engineer pastes into a ticket.
//! - [`revocation`]: `pki revoke` and `pki list`, the revocation list.
//! - [`since`]: `--since 30d|12h|15m|RFC3339`.
//! - [`labels`]: `--label KEY=VALUE` filters and the labels column.
//! - [`ui`]: `gw502ctl ui`, the web view on loopback.
#![warn(missing_docs)]

pub mod args;
pub mod client;
pub mod commands;
pub mod customer;
pub mod error;
pub mod json;
pub mod labels;
pub mod render;
pub mod revocation;
pub mod settings;
pub mod since;
pub mod ui;

use std::process::ExitCode;

use clap::Parser;

/// Parses the process arguments, runs the command and returns the exit code;
/// errors are printed to stderr as one line.
pub fn main_entry() -> ExitCode {
    // Usage errors exit 64 like every other configuration error (see `--help`);
    // `--help` and `--version` print and exit 0.
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(error::EXIT_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gw502ctl: error: cannot start the runtime: {e}");
            return ExitCode::from(error::EXIT_RUNTIME);
        }
    };
    let mut stdout = std::io::stdout();
    let result = runtime.block_on(commands::run(cli, |k| std::env::var(k).ok(), &mut stdout));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`gw502ctl incidents | head`) is not an error.
        Err(error::CtlError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gw502ctl: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
