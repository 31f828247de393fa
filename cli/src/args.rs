//! The command line of gw502ctl, declared with clap derive.
//!
//! Connection options are plain `Option`s here: environment variables, the
//! config file and the all-in-one data dir are layered in
//! [`crate::settings`], so the precedence can be tested without touching the
//! process environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const SETTINGS_HELP: &str = "\
Connection settings (highest precedence first):
  1. flags: --collector, --ca, --cert, --key
  2. environment: GW502_COLLECTOR, GW502_CA, GW502_CERT, GW502_KEY
  3. config file (--config, GW502_CONFIG, or $XDG_CONFIG_HOME/gw502/ctl.toml):
       collector = \"https://collector.example:7502\"
       ca = \"/etc/gw502/pki/ca.crt\"
       cert = \"/etc/gw502/pki/operators/alice.crt\"
       key = \"/etc/gw502/pki/operators/alice.key\"
  4. all-in-one data dir (--data-dir, GW502_DATA_DIR): DIR/endpoint and DIR/pki/...

Exit codes: 0 ok, 1 runtime error, 64 usage or configuration error.

Examples:
  gw502ctl --data-dir /var/lib/gw502 incidents
  gw502ctl incidents show 42
  gw502ctl --json incidents --all --since 7d | jq '.[] | .cause'";

/// gw502ctl: ask the gw502 collector which layer and cause is behind every 502.
#[derive(Debug, Parser)]
#[command(name = "gw502ctl", version, about, after_help = SETTINGS_HELP)]
pub struct Cli {
    /// Connection and output options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Collector address, e.g. https://127.0.0.1:7502 [env: GW502_COLLECTOR]
    #[arg(long, global = true, value_name = "URL")]
    pub collector: Option<String>,
    /// CA certificate that signed the collector [env: GW502_CA]
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Operator certificate [env: GW502_CERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Operator private key [env: GW502_KEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// TOML config with keys collector, ca, cert, key [env: GW502_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// All-in-one data dir: reads DIR/endpoint and DIR/pki [env: GW502_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON (see docs/JSON.md) instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

/// gw502ctl's full clap command, for man pages and completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the fleet CA and issue certificates (offline, no collector needed)
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Hosts that report to the collector
    #[command(
        after_help = "Examples:\n  gw502ctl hosts\n  gw502ctl hosts show web-1\n  gw502ctl hosts --label customer=acme\n  gw502ctl --json hosts"
    )]
    Hosts {
        /// Show one host instead of the list
        #[command(subcommand)]
        show: Option<HostsCommand>,
        /// Only hosts with this label (repeatable; all must match)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// Sites the collector probes, with their last probe
    #[command(
        after_help = "Examples:\n  gw502ctl sites\n  gw502ctl sites --label customer=acme\n  gw502ctl --json sites"
    )]
    Sites {
        /// Only sites with this label (repeatable; all must match)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// Incidents: which layer and cause is behind the errors
    #[command(
        after_help = "Examples:\n  gw502ctl incidents\n  gw502ctl incidents --all --since 7d --layer handoff\n  gw502ctl incidents --label customer=acme\n  gw502ctl incidents show 42\n  gw502ctl --json incidents watch"
    )]
    Incidents(IncidentsArgs),
    /// Notifications sent to receivers (webhooks, Alertmanager)
    #[command(after_help = "Examples:\n  gw502ctl deliveries\n  gw502ctl deliveries --incident 42")]
    Deliveries {
        /// Only deliveries of this incident
        #[arg(long, value_name = "ID")]
        incident: Option<u64>,
    },
    /// Probe a site now and attribute any error with the latest host evidence
    #[command(
        after_help = "Examples:\n  gw502ctl explain https://shop.example/\n  gw502ctl explain https://shop.example/ --for customer\n  gw502ctl --json explain https://shop.example/health"
    )]
    Explain {
        /// The URL to probe (it must belong to a known site)
        url: String,
        /// Who reads it: operator (evidence and chain) or customer (what to paste into a ticket)
        #[arg(long = "for", value_enum, default_value_t = Audience::Operator)]
        audience: Audience,
        /// With --for customer: keep fleet host names in the text
        #[arg(long)]
        show_hosts: bool,
    },
    /// Serve the web view on loopback, reading the collector with these credentials
    #[command(
        after_help = "The web view is server-rendered HTML (incidents, one incident with its request chain,\nhosts, sites); it talks to the collector with the operator certificate above, the way\n`kubectl proxy` does, so it listens on loopback only unless --allow-remote is given.\n\nExamples:\n  gw502ctl --data-dir /var/lib/gw502 ui\n  gw502ctl ui --listen 127.0.0.1:9000"
    )]
    Ui {
        /// Address to listen on (loopback unless --allow-remote)
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8502")]
        listen: String,
        /// Accept a non-loopback --listen address and any Host name: whoever reaches it reads the fleet as you
        #[arg(long)]
        allow_remote: bool,
    },
    /// Print shell completions (offline, no collector needed)
    #[command(
        after_help = "Examples:\n  gw502ctl completions bash > /etc/bash_completion.d/gw502ctl\n  gw502ctl completions zsh > \"${fpath[1]}/_gw502ctl\"\n  gw502ctl completions fish > ~/.config/fish/completions/gw502ctl.fish"
    )]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// Who an explanation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Audience {
    /// The operator: probes, verdicts, evidence and the next check.
    Operator,
    /// The customer: what failed, since when, whose side, what to do.
    Customer,
}

/// `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the fleet CA (ca.crt, ca.key) in DIR
    #[command(after_help = "Example:\n  gw502ctl pki init --dir /etc/gw502/pki")]
    Init {
        /// PKI directory
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Replace an existing CA (every certificate it signed stops working)
        #[arg(long)]
        force: bool,
    },
    /// Issue a certificate signed by the CA in DIR
    #[command(
        after_help = "Examples:\n  gw502ctl pki issue agent web-1 --dir /etc/gw502/pki\n  gw502ctl pki issue collector main --dir /etc/gw502/pki --san collector.example --san 10.77.0.1\n  gw502ctl pki issue operator alice --dir /etc/gw502/pki\n  gw502ctl pki issue operator support-acme --dir /etc/gw502/pki --scope customer=acme"
    )]
    Issue {
        /// Role of the holder
        role: RoleArg,
        /// Name: the host id for agents ([A-Za-z0-9._-], at most 253)
        name: String,
        /// PKI directory holding ca.crt and ca.key
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// DNS name or IP of a collector (repeatable; default: localhost, 127.0.0.1, ::1, hostname)
        #[arg(long, value_name = "NAME_OR_IP")]
        san: Vec<String>,
        /// Operators only: see just the sites, hosts and incidents with this label
        /// (repeatable; all must match). Without it the operator sees everything
        #[arg(long, value_name = "KEY=VALUE")]
        scope: Vec<String>,
    },
    /// Revoke a certificate: add it to DIR/crl.pem, which collectors reload by themselves
    #[command(
        after_help = "Examples:\n  gw502ctl pki revoke web-1 --dir /etc/gw502/pki --reason key-compromise\n  gw502ctl pki revoke operator/alice --dir /etc/gw502/pki --reason affiliation-changed\n  gw502ctl pki revoke --serial 3fa2c1 --dir /etc/gw502/pki"
    )]
    Revoke {
        /// Certificate name, or ROLE/NAME when the name exists for several roles
        #[arg(required_unless_present = "serial", conflicts_with = "serial")]
        name: Option<String>,
        /// Serial number in hex (as `pki list` prints it), for a certificate no longer on disk
        #[arg(long, value_name = "HEX")]
        serial: Option<String>,
        /// Why (recorded in the CRL entry)
        #[arg(long, value_enum, default_value = "unspecified")]
        reason: ReasonArg,
        /// PKI directory holding ca.crt and ca.key
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// List the issued certificates with serial, expiry and revocation
    #[command(after_help = "Example:\n  gw502ctl pki list --dir /etc/gw502/pki")]
    List {
        /// PKI directory
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Why a certificate is revoked, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReasonArg {
    /// No reason given
    Unspecified,
    /// The private key leaked or may have
    KeyCompromise,
    /// The host left the fleet or the person left the team
    AffiliationChanged,
    /// Replaced by a newer certificate
    Superseded,
    /// The host or service no longer exists
    CessationOfOperation,
    /// The holder may no longer do what the certificate allowed
    PrivilegeWithdrawn,
}

/// A certificate role on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Host agent (client certificate)
    Agent,
    /// Collector (server and client certificate)
    Collector,
    /// Operator using gw502ctl (client certificate)
    Operator,
}

/// `hosts show`.
#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// One host's summary and current state: units, listeners, targets, probes, DNS, log signals
    #[command(after_help = "Example:\n  gw502ctl hosts show web-1")]
    Show {
        /// Host id
        id: String,
    },
}

/// `incidents` and its filters.
#[derive(Debug, Args)]
pub struct IncidentsArgs {
    /// Show one incident or watch
    #[command(subcommand)]
    pub command: Option<IncidentsCommand>,
    /// Include resolved incidents
    #[arg(long)]
    pub all: bool,
    /// Only this site
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Only this layer (client, edge, proxy, handoff, upstream, response, dependency, unknown)
    #[arg(long, value_name = "LAYER")]
    pub layer: Option<String>,
    /// Only this owner (customer, cdn, platform, app, ...)
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only incidents updated since: 30d, 12h, 15m, 45s or an RFC3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only incidents whose site has this label (repeatable; all must match)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// `incidents show|watch`.
#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// The request chain with the failing hop, the verdict and the evidence timeline
    #[command(after_help = "Example:\n  gw502ctl incidents show 42")]
    Show {
        /// Incident id
        id: u64,
    },
    /// Stream incident changes as they happen (one line per event; Ctrl-C stops)
    #[command(
        after_help = "Examples:\n  gw502ctl incidents watch\n  gw502ctl --json incidents watch --site shop"
    )]
    Watch {
        /// Only this site
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// Only incidents whose site has this label (repeatable; all must match)
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
}

/// Parses a `--label KEY=VALUE` filter.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}
