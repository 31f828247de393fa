//! Logging, metrics and signal handling shared by the gw502 binaries.

use std::io::IsTerminal;
use std::net::SocketAddr;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colour only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for journald forwarding and log pipelines.
    Json,
}

/// The `--log-format` flag both daemons take (also `GW502_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LogArgs {
    /// Log line format: text (colour only on a terminal) or json.
    #[arg(
        long,
        value_enum,
        env = "GW502_LOG_FORMAT",
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

/// Structured logs to stderr; `RUST_LOG` filters (default `info`). Colour is
/// used only when stderr is a terminal, so journald and files get plain text.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests, all-in-one) keeps the first subscriber.
    drop(result);
}

/// Errors starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint {addr}: {reason}")]
pub struct MetricsError {
    addr: SocketAddr,
    reason: String,
}

/// Serves Prometheus metrics on `addr` (opt-in).
pub fn serve_metrics(addr: SocketAddr) -> Result<(), MetricsError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| MetricsError {
            addr,
            reason: e.to_string(),
        })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}
