//! gw502-proxy: everything gw502 knows about one reverse proxy, in one
//! place per proxy. The agent asks it which units and binary to look for,
//! where the config is and how to read and test it, how to parse and
//! classify the error log and the access log, and whether log times are
//! zone-less local time; the probes ask it whose error page a response is;
//! the collector asks it to classify a raw log sample. Everything here is
//! pure: no I/O, no async, so every parser is unit-tested on captured
//! fixtures (`proxy/fixtures/`) and fuzzed (`fuzz/`).
//!
//! A proxy is registered in exactly one place, [`proxy`]: a `match` on the
//! vocabulary word [`ProxyKind`], so adding a kind to `gw502-vocab` does not
//! compile until its module implements [`Proxy`].
//!
//! # Layout
//!
//! - [`nginx`], [`haproxy`], [`apache`], [`caddy`], [`varnish`], [`traefik`],
//!   [`envoy`]: one module per proxy, each with its `config` (discovery) and
//!   `log` (error-log lines) parsers and the [`Proxy`] impl that ties them
//!   together; Traefik and Envoy also read their APIs' answers (`api`,
//!   `admin`), which the agent fetches on loopback.
//! - [`yaml`]: the YAML reader of the Traefik and Envoy config parsers.
//! - [`line`]: [`ErrorLine`], the parsed error-log line every proxy returns,
//!   and the candidate cause sets they share.
//! - [`access`]: access-log formats and the line matcher.
//! - [`target`]: upstream addresses as written in configs.
//! - [`test`]: reading a config test's output ([`TestReading`]).
//! - [`page`]: the request for an error-page fingerprint ([`Page`]).
#![warn(missing_docs)]

pub mod access;
pub mod apache;
pub mod caddy;
pub mod envoy;
pub mod haproxy;
pub mod line;
pub mod nginx;
pub mod page;
pub mod target;
pub mod test;
pub mod traefik;
pub mod varnish;
pub mod yaml;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use gw502_proto::v1::ProxyConfig;
use gw502_vocab::Hop;
pub use gw502_vocab::ProxyKind;

pub use access::AccessFormat;
pub use line::ErrorLine;
/// Matches an include glob (`*`, `?`) against a path, as nginx does.
pub use nginx::config::syntax::glob_match;
pub use page::{Page, PageMark};
pub use test::TestReading;

/// Where one proxy's binary and config live on a host. Paths are host
/// paths; the agent resolves file paths under its `/etc` root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLocation {
    /// The binary that dumps or tests the config (found on PATH when bare).
    pub bin: PathBuf,
    /// The main config file or directory; `None` uses the proxy's
    /// compiled-in path (nginx).
    pub config: Option<PathBuf>,
    /// The prefix relative paths are resolved under (nginx `-p`).
    pub prefix: Option<PathBuf>,
}

/// How the agent obtains a proxy's effective config text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Run [`ConfigLocation::bin`] with `args`; stdout is the config
    /// (`nginx -T`), and the run is also the config test. When the run
    /// prints nothing because it could not run as this user, read
    /// `fallback` and the files it includes instead ([`Proxy::includes`],
    /// [`Proxy::join_files`]).
    Dump {
        /// The arguments.
        args: Vec<OsString>,
        /// The main config file to read when the dump is empty.
        fallback: Option<PathBuf>,
    },
    /// Read this file.
    File(PathBuf),
    /// Read this file and, recursively, the files [`Proxy::includes`]
    /// names, joined with [`Proxy::join_files`] (Traefik's static config
    /// and the file provider's files). There is no config test.
    Includes(PathBuf),
    /// Read `main`, then every file of each of `dirs` in name order, and
    /// join them (Apache's `conf-enabled/`, `sites-enabled/`).
    Tree {
        /// The main file.
        main: PathBuf,
        /// Directories whose files are appended.
        dirs: Vec<PathBuf>,
    },
}

/// What a config says, beyond the wire `ProxyConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    /// Servers, targets and log files, with `kind` set; unit, hash, test
    /// and change time are for the caller.
    pub config: ProxyConfig,
    /// Access log path to the line format it is written in.
    pub access_formats: Vec<(String, AccessFormat)>,
}

/// One reverse proxy: everything gw502 knows about it. Implemented once per
/// proxy module and looked up with [`proxy`].
pub trait Proxy: Send + Sync {
    /// Its vocabulary word.
    fn kind(&self) -> ProxyKind;

    /// The systemd units that run it; the first is the one reported.
    fn units(&self) -> &'static [&'static str];

    /// The hop it is when it makes an error page itself: `proxy`, or
    /// `cache` for a cache in the chain (Varnish).
    fn hop(&self) -> Hop {
        Hop::Proxy
    }

    /// The status of its own answer to a visitor whose request it could not pass
    /// on because the upstream refused the connection (nothing listens there).
    fn refused_status(&self) -> u16;

    /// The status of its own answer to a visitor whose request it could not pass
    /// on because the TLS handshake with the upstream failed (the certificate
    /// rejected, or no TLS there). Most count it as a failed connect: nginx's
    /// `SSL_do_handshake() failed` 502, HAProxy's `SC` 503, Varnish's and
    /// Envoy's 503.
    fn handshake_status(&self) -> u16 {
        self.refused_status()
    }

    /// The status of its own answer to a visitor whose request it could not pass
    /// on because the connect to the upstream timed out (a drop on the path):
    /// nginx's `upstream timed out (110: Connection timed out) while connecting
    /// to upstream` 504.
    fn connect_timeout_status(&self) -> u16 {
        504
    }

    /// The status of its own answer to a visitor whose upstream, reached over
    /// `protocol` (a target's protocol word), took the request and sent no
    /// response header before the read timeout.
    fn read_timeout_status(&self, _protocol: &str) -> u16 {
        504
    }

    /// Where its binary and config usually are (Debian layout).
    fn default_location(&self) -> ConfigLocation;

    /// Whether the agent reads its unit files ([`Proxy::locate`]) and lists
    /// it only while its unit is enabled or its binary runs: a package
    /// whose shipped config already names a backend (Varnish's default VCL
    /// names `127.0.0.1:8080`) would otherwise add a phantom target on every
    /// host where it is installed but unused.
    fn reads_unit(&self) -> bool {
        false
    }

    /// Where its config is according to its unit: `unit_files` are the unit
    /// file and its drop-ins in the order systemd reads them (Varnish's
    /// `ExecStart` names the VCL with `-f`). `None` keeps `at`.
    fn locate(&self, _unit_files: &[String], _at: &ConfigLocation) -> Option<ConfigLocation> {
        None
    }

    /// How to obtain its config text.
    fn config_source(&self, at: &ConfigLocation) -> ConfigSource;

    /// Parses the config text [`Proxy::config_source`] produced.
    fn parse_config(&self, text: &str, at: &ConfigLocation) -> Discovered;

    /// The argv of its config test when the dump is not one, given the
    /// config path as the agent resolved it; `None` when it has none.
    fn config_test(&self, _at: &ConfigLocation, _config: &Path) -> Option<Vec<OsString>> {
        None
    }

    /// Reads a finished config test (or dump): its exit status and stderr.
    fn read_test(&self, success: bool, stderr: &str) -> TestReading {
        test::read_plain(success, stderr)
    }

    /// The include patterns (absolute, globs allowed) that one config file
    /// of this proxy names; `file` is that file's path. Empty by default.
    fn includes(&self, _file: &str, _text: &str) -> Vec<String> {
        Vec::new()
    }

    /// Joins files read by the agent (path, text; main file first) into
    /// the text [`Proxy::parse_config`] takes.
    fn join_files(&self, files: &[(String, String)]) -> String {
        files
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Parses and classifies one error-log line. `None` when the line does
    /// not have this proxy's shape.
    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine>;

    /// Whether its log times are zone-less local time (to be converted with
    /// the host's zone) rather than absolute.
    fn local_time(&self) -> bool;

    /// The access-log format of a log whose config names none; `None` when
    /// its access logs are not counted.
    fn default_access_format(&self) -> Option<AccessFormat>;

    /// Whether this response is its own error page, and how sure.
    fn page(&self, page: &Page<'_>) -> Option<PageMark>;
}

/// The model of one proxy kind: the only place a proxy is registered.
pub fn proxy(kind: ProxyKind) -> &'static dyn Proxy {
    match kind {
        ProxyKind::Nginx => &nginx::Nginx,
        ProxyKind::Haproxy => &haproxy::Haproxy,
        ProxyKind::Apache => &apache::Apache,
        ProxyKind::Caddy => &caddy::Caddy,
        ProxyKind::Traefik => &traefik::Traefik,
        ProxyKind::Envoy => &envoy::Envoy,
        ProxyKind::Varnish => &varnish::Varnish,
    }
}

/// Every proxy, in vocabulary order.
pub fn all() -> impl Iterator<Item = &'static dyn Proxy> {
    ProxyKind::ALL.iter().map(|k| proxy(*k))
}

/// The proxy named by a wire word (`LogSignal.proxy`, `ProxyConfig.kind`,
/// a fingerprint); `None` for words that name no proxy.
pub fn by_word(word: &str) -> Option<&'static dyn Proxy> {
    word.parse().ok().map(proxy)
}

/// The proxy that a systemd unit runs, by unit name.
pub fn by_unit(unit: &str) -> Option<&'static dyn Proxy> {
    all().find(|p| p.units().contains(&unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_keyed_by_kind_and_unit() {
        for p in all() {
            assert_eq!(proxy(p.kind()).kind(), p.kind());
            assert_eq!(by_word(p.kind().as_str()).map(|q| q.kind()), Some(p.kind()));
            let unit = p.units()[0];
            assert_eq!(by_unit(unit).map(|q| q.kind()), Some(p.kind()));
        }
        assert_eq!(
            by_unit("apache2.service").map(|p| p.kind()),
            Some(ProxyKind::Apache)
        );
        assert!(by_unit("app.service").is_none());
        assert!(by_word("app").is_none());
        assert!(by_word("cloudflare_branded").is_none());
    }

    #[test]
    fn zone_less_logs_are_the_ones_without_epoch_times() {
        let local: Vec<ProxyKind> = all().filter(|p| p.local_time()).map(|p| p.kind()).collect();
        assert_eq!(
            local,
            [ProxyKind::Nginx, ProxyKind::Haproxy, ProxyKind::Apache]
        );
    }
}
