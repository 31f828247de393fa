//! The agent's config: raw TOML, validation with every problem reported at
//! once, and the typed [`Config`]. Every key is documented in
//! `deploy/agent.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::containers::ContainersSettings;
use crate::source::Roots;
use gw502_daemon::settings::{ByteSize, ConfigError, HumanDuration, Problems, load_toml};
pub use gw502_daemon::settings::{RawTls, Tls};
use gw502_proxy::ProxyKind;

/// The raw file.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// This host's id; must match the agent certificate's name.
    pub host_id: Option<String>,
    /// One collector address, e.g. `https://collector.example:7502`.
    pub collector: Option<String>,
    /// Several collector addresses, tried in order (instead of `collector`).
    pub collectors: Option<Vec<String>>,
    /// Report interval.
    pub interval: Option<HumanDuration>,
    /// A full snapshot every N reports.
    pub full_snapshot_every: Option<u64>,
    /// Where the spool, journal cursor and other state live.
    pub state_dir: Option<PathBuf>,
    /// Bound of the on-disk spool.
    pub spool_max: Option<ByteSize>,
    /// Memory for reports the spool's disk refuses.
    pub spool_memory_max: Option<ByteSize>,
    /// Extra units to watch besides the discovered ones.
    #[serde(default)]
    pub units: Vec<String>,
    /// TLS material.
    #[serde(default)]
    pub tls: RawTls,
    /// Filesystem roots.
    #[serde(default)]
    pub roots: RawRoots,
    /// The nginx binary used for `nginx -T` / `nginx -t`.
    pub nginx: Option<PathBuf>,
    /// Per-probe timeout for direct upstream probes.
    pub probe_timeout: Option<HumanDuration>,
    /// Public sites this host probes as an extra vantage point.
    #[serde(default)]
    pub cross_probes: Vec<RawCrossProbe>,
    /// Address for Prometheus metrics (off when absent).
    pub metrics_listen: Option<String>,
    /// How long SIGTERM waits for the report in flight.
    pub shutdown_grace: Option<HumanDuration>,
    /// The container engine source.
    #[serde(default)]
    pub containers: RawContainers,
    /// The `[traefik]` table.
    #[serde(default)]
    pub traefik: RawProxyApi,
    /// The `[envoy]` table.
    #[serde(default)]
    pub envoy: RawProxyApi,
}

/// The `[containers]` table.
#[derive(Debug, Default, Deserialize)]
pub struct RawContainers {
    /// Read the engine at all (default true).
    pub enabled: Option<bool>,
    /// The engine's API socket (default `/run/docker.sock`).
    pub socket: Option<PathBuf>,
    /// Bound on one API call.
    pub timeout: Option<HumanDuration>,
}

/// The `[traefik]` and `[envoy]` tables: where the proxy's config is and
/// its API on loopback (`api` for Traefik, `admin` for Envoy; `"off"`
/// turns it off).
#[derive(Debug, Default, Deserialize)]
pub struct RawProxyApi {
    /// The static config (Traefik) or bootstrap file (Envoy).
    pub config: Option<PathBuf>,
    /// Traefik's API address.
    pub api: Option<String>,
    /// Envoy's admin address.
    pub admin: Option<String>,
}

/// The `[roots]` table.
#[derive(Debug, Default, Deserialize)]
pub struct RawRoots {
    /// Instead of `/proc`.
    pub proc: Option<PathBuf>,
    /// Instead of `/sys`.
    pub sys: Option<PathBuf>,
    /// Instead of `/run`.
    pub run: Option<PathBuf>,
    /// Instead of `/etc`.
    pub etc: Option<PathBuf>,
}

/// One `[[cross_probes]]` entry.
#[derive(Debug, Deserialize)]
pub struct RawCrossProbe {
    /// Site name as the collector knows it.
    pub site: String,
    /// Its public URL.
    pub url: String,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// This host's id.
    pub host_id: String,
    /// Collector addresses in the order they are tried; never empty. A name
    /// that resolves to several addresses stands for all of them.
    pub collectors: Vec<String>,
    /// How the agent authenticates.
    pub transport: Tls,
    /// Report interval.
    pub interval: Duration,
    /// Full snapshot period in reports.
    pub full_snapshot_every: u64,
    /// State directory.
    pub state_dir: PathBuf,
    /// Spool bound in bytes.
    pub spool_max: u64,
    /// Bytes of reports held in memory while the spool's disk refuses them
    /// (0: none).
    pub spool_memory_max: u64,
    /// Extra units to watch.
    pub units: Vec<String>,
    /// Filesystem roots.
    pub roots: Roots,
    /// nginx binary.
    pub nginx: PathBuf,
    /// Direct probe timeout.
    pub probe_timeout: Duration,
    /// Sites probed from here: (site, url).
    pub cross_probes: Vec<(String, String)>,
    /// Metrics listener.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The bound on finishing the report in flight at shutdown.
    pub shutdown_grace: Duration,
    /// The container engine source.
    pub containers: ContainersSettings,
    /// Per proxy with an API: its config file (when not the default) and
    /// its loopback API address (`None`: off).
    pub proxy_apis: Vec<ProxyApi>,
}

/// Where one proxy with an API (Traefik, Envoy) is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyApi {
    /// Which proxy.
    pub kind: ProxyKind,
    /// Its config file, when set.
    pub config: Option<PathBuf>,
    /// Its API on loopback, asked only when the proxy's config is found.
    pub api: Option<std::net::SocketAddr>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (raw, problems) = load_toml::<RawConfig>(path)?;
        raw.validate(path, problems)
    }

    /// Defaults for a one-off local snapshot, which needs no collector.
    pub fn local_default() -> Self {
        let raw = RawConfig {
            collector: Some("http://127.0.0.1:7502".into()),
            tls: RawTls {
                plaintext: true,
                ..RawTls::default()
            },
            state_dir: Some(std::env::temp_dir().join("gw502-agent-snapshot")),
            ..RawConfig::default()
        };
        raw.validate(Path::new("defaults"), Problems::default())
            .expect("the built-in defaults are valid")
    }
}

impl RawConfig {
    /// Checks every key, returning all problems at once.
    pub fn validate(self, path: &Path, mut problems: Problems) -> Result<Config, ConfigError> {
        let host_id = self.host_id.unwrap_or_else(local_host_name);
        if let Err(reason) = gw502_vocab::name::check_name(&host_id) {
            problems.push("host_id", format!("{host_id:?}: {reason}"));
        }
        let transport = self.tls.validate(&mut problems);
        let collectors = collectors(
            self.collector,
            self.collectors,
            transport.as_ref(),
            &mut problems,
        );
        let interval = self.interval.map_or(Duration::from_secs(10), |d| d.0);
        if interval < Duration::from_secs(1) {
            problems.push("interval", "must be at least 1s");
        }
        let spool_max = self.spool_max.map_or(64 << 20, |b| b.0);
        if spool_max < 64 << 10 {
            problems.push("spool_max", "must be at least 64KiB");
        }
        let spool_memory_max = match self.spool_memory_max {
            Some(b) if b.0 > spool_max => {
                problems.push("spool_memory_max", "must not exceed spool_max");
                b.0
            }
            Some(b) => b.0,
            None => spool_max.min(4 << 20),
        };
        for (i, probe) in self.cross_probes.iter().enumerate() {
            if !(probe.url.starts_with("http://") || probe.url.starts_with("https://")) {
                problems.push(
                    format!("cross_probes[{i}].url"),
                    format!("{:?} must be an http(s) URL", probe.url),
                );
            }
        }
        let metrics_listen = self.metrics_listen.as_deref().and_then(|text| {
            problems.check(
                "metrics_listen",
                text.parse().map_err(|e| format!("{text:?}: {e}")),
            )
        });
        let containers = self.containers.validate(&mut problems);
        let proxy_apis = vec![
            proxy_api(
                ProxyKind::Traefik,
                self.traefik,
                "api",
                "127.0.0.1:8080",
                &mut problems,
            ),
            proxy_api(
                ProxyKind::Envoy,
                self.envoy,
                "admin",
                "127.0.0.1:9901",
                &mut problems,
            ),
        ];
        let defaults = Roots::default();
        let roots = Roots {
            proc: self.roots.proc.unwrap_or(defaults.proc),
            sys: self.roots.sys.unwrap_or(defaults.sys),
            run: self.roots.run.unwrap_or(defaults.run),
            etc: self.roots.etc.unwrap_or(defaults.etc),
        };
        let config = Config {
            host_id,
            collectors,
            transport: transport.unwrap_or(Tls::Plaintext),
            interval,
            full_snapshot_every: self.full_snapshot_every.unwrap_or(30).max(1),
            state_dir: self
                .state_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/gw502-agent")),
            spool_max,
            spool_memory_max,
            units: self.units,
            roots,
            nginx: self.nginx.unwrap_or_else(|| PathBuf::from("nginx")),
            probe_timeout: self.probe_timeout.map_or(Duration::from_secs(3), |d| d.0),
            cross_probes: self
                .cross_probes
                .into_iter()
                .map(|p| (p.site, p.url))
                .collect(),
            metrics_listen,
            shutdown_grace: self.shutdown_grace.map_or(Duration::from_secs(10), |d| d.0),
            containers,
            proxy_apis,
        };
        problems.finish(path, config)
    }
}

impl RawContainers {
    fn validate(self, problems: &mut Problems) -> ContainersSettings {
        let defaults = ContainersSettings::default();
        if let Some(socket) = &self.socket
            && !socket.is_absolute()
        {
            problems.push(
                "containers.socket",
                format!("{} must be an absolute path", socket.display()),
            );
        }
        let timeout = self.timeout.map_or(defaults.timeout, |d| d.0);
        if timeout.is_zero() {
            problems.push("containers.timeout", "must be more than 0s");
        }
        ContainersSettings {
            enabled: self.enabled.unwrap_or(true),
            explicit: self.socket.is_some(),
            socket: self.socket.unwrap_or(defaults.socket),
            timeout,
            ..defaults
        }
    }
}

/// One `[traefik]`/`[envoy]` table: the address key (`api`, `admin`) must
/// be a loopback `ip:port` or `"off"`; the other proxy's key is a problem.
fn proxy_api(
    kind: ProxyKind,
    raw: RawProxyApi,
    key: &str,
    default: &str,
    problems: &mut Problems,
) -> ProxyApi {
    let (address, other) = match key {
        "api" => (raw.api, raw.admin.map(|_| "admin")),
        _ => (raw.admin, raw.api.map(|_| "api")),
    };
    if let Some(other) = other {
        problems.push(
            format!("{kind}.{other}"),
            format!("unknown key (the {kind} address is {kind}.{key})"),
        );
    }
    let text = address.unwrap_or_else(|| default.to_string());
    let api = if text == "off" {
        None
    } else {
        match text.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Some(addr),
            Ok(_) => {
                problems.push(
                    format!("{kind}.{key}"),
                    format!("{text:?} is not on loopback: the agent asks only this host"),
                );
                None
            }
            Err(e) => {
                problems.push(
                    format!("{kind}.{key}"),
                    format!("{text:?}: {e} (or \"off\")"),
                );
                None
            }
        }
    };
    ProxyApi {
        kind,
        config: raw.config,
        api,
    }
}

/// The collector addresses from `collector` (one) or `collectors` (several),
/// with a problem under the offending key for each bad one.
fn collectors(
    one: Option<String>,
    several: Option<Vec<String>>,
    transport: Option<&Tls>,
    problems: &mut Problems,
) -> Vec<String> {
    let (key, addresses) = match (one, several) {
        (Some(_), Some(_)) => {
            problems.push(
                "collectors",
                "set either collector (one address) or collectors (a list), not both",
            );
            return Vec::new();
        }
        (Some(one), None) => ("collector", vec![one]),
        (None, Some(several)) if several.is_empty() => {
            problems.push("collectors", "empty: name at least one collector address");
            return Vec::new();
        }
        (None, Some(several)) => ("collectors", several),
        (None, None) => {
            problems.push(
                "collector",
                "missing (e.g. \"https://collector.example:7502\", or collectors = [...])",
            );
            return Vec::new();
        }
    };
    let single = addresses.len() == 1 && key == "collector";
    for (i, address) in addresses.iter().enumerate() {
        let key = if single {
            key.to_string()
        } else {
            format!("{key}[{i}]")
        };
        if let Err(reason) = check_address(address, transport) {
            problems.push(key.clone(), reason);
        }
        if addresses[..i].contains(address) {
            problems.push(key, format!("{address:?} is listed twice"));
        }
    }
    addresses
}

/// One collector address: an http(s) URL with a host and a port.
fn check_address(address: &str, transport: Option<&Tls>) -> Result<(), String> {
    if address.is_empty() {
        return Err("empty (e.g. \"https://collector.example:7502\")".into());
    }
    let url = url::Url::parse(address).map_err(|e| format!("{address:?}: {e}"))?;
    match url.scheme() {
        "https" if transport == Some(&Tls::Plaintext) => {
            return Err(format!(
                "{address:?}: https:// needs tls.ca, tls.cert and tls.key"
            ));
        }
        "https" | "http" => {}
        _ => {
            return Err(format!(
                "{address:?} must start with https:// (or http:// with tls.plaintext)"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{address:?} has no host"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(format!("{address:?}: give only scheme, host and port"));
    }
    Ok(())
}

/// The kernel's host name, the default host id.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_daemon::settings::parse_toml;

    fn validate(text: &str) -> Result<Config, ConfigError> {
        let path = Path::new("agent.toml");
        let (raw, problems) = parse_toml::<RawConfig>(path, text)?;
        raw.validate(path, problems)
    }

    #[test]
    fn all_problems_at_once() {
        let err = validate(
            "host_id = \"bad host\"\ninterval = \"10ms\"\nspool_max = \"1KiB\"\nsurprise = true\n[[cross_probes]]\nsite = \"s\"\nurl = \"gopher://x\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "surprise",
                "host_id",
                "tls.ca",
                "tls.cert",
                "tls.key",
                "collector",
                "interval",
                "spool_max",
                "cross_probes[0].url"
            ]
        );
    }

    #[test]
    fn mtls_config_with_defaults() {
        let config = validate(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n[tls]\nca = \"/p/ca.crt\"\ncert = \"/p/web1.crt\"\nkey = \"/p/web1.key\"\n",
        )
        .unwrap();
        assert_eq!(config.interval, Duration::from_secs(10));
        assert_eq!(config.spool_memory_max, 4 << 20);
        assert!(matches!(config.transport, Tls::Mutual { .. }));
        let err = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\nspool_max = \"1MiB\"\nspool_memory_max = \"2MiB\"\n{TLS}"
        ))
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["spool_memory_max"], "{err}");
        assert_eq!(config.roots, Roots::default());
        assert_eq!(config.collectors, ["https://c:7502"]);
        assert!(config.containers.enabled && !config.containers.explicit);
        assert_eq!(config.containers.socket, PathBuf::from("/run/docker.sock"));
    }

    #[test]
    fn containers_table() {
        let config = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n{TLS}[containers]\nsocket = \"/run/podman/podman.sock\"\ntimeout = \"2s\"\n"
        ))
        .unwrap();
        assert!(config.containers.explicit);
        assert_eq!(
            config.containers.socket,
            PathBuf::from("/run/podman/podman.sock")
        );
        assert_eq!(config.containers.timeout, Duration::from_secs(2));
        let err = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n{TLS}[containers]\nsocket = \"docker.sock\"\nsurprise = 1\n"
        ))
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["containers.surprise", "containers.socket"], "{err}");
    }

    const TLS: &str = "[tls]\nca = \"/p/ca.crt\"\ncert = \"/p/w.crt\"\nkey = \"/p/w.key\"\n";

    #[test]
    fn several_collectors_in_order() {
        let config = validate(&format!(
            "host_id = \"web1\"\ncollectors = [\"https://c1:7502\", \"https://[fd00::2]:7502\", \"https://collectors.example\"]\n{TLS}"
        ))
        .unwrap();
        assert_eq!(
            config.collectors,
            [
                "https://c1:7502",
                "https://[fd00::2]:7502",
                "https://collectors.example"
            ]
        );
    }

    #[test]
    fn every_bad_collector_is_named_by_its_key() {
        let err = validate(&format!(
            "host_id = \"web1\"\ncollectors = [\"https://c1:7502\", \"c2:7502\", \"https://c1:7502\", \"https://c3:7502/ingest\", \"\"]\n{TLS}"
        ))
        .unwrap_err();
        let problems: Vec<_> = err
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str()))
            .collect();
        let keys: Vec<_> = problems.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "collectors[1]",
                "collectors[2]",
                "collectors[3]",
                "collectors[4]"
            ],
            "{problems:?}"
        );
        assert!(problems[1].1.contains("listed twice"), "{problems:?}");
    }

    #[test]
    fn collector_and_collectors_exclude_each_other() {
        let err = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c1:7502\"\ncollectors = [\"https://c2:7502\"]\n{TLS}"
        ))
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].key, "collectors");
        let err = validate(&format!("host_id = \"web1\"\ncollectors = []\n{TLS}")).unwrap_err();
        assert_eq!(err.problems[0].key, "collectors");
    }

    #[test]
    fn proxy_apis_default_on_loopback_and_refuse_other_hosts() {
        let config = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n{TLS}"
        ))
        .unwrap();
        let addrs: Vec<_> = config.proxy_apis.iter().map(|p| (p.kind, p.api)).collect();
        assert_eq!(
            addrs,
            [
                (ProxyKind::Traefik, "127.0.0.1:8080".parse().ok()),
                (ProxyKind::Envoy, "127.0.0.1:9901".parse().ok())
            ]
        );
        let config = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n[traefik]\napi = \"off\"\nconfig = \"/etc/traefik/traefik.toml\"\n{TLS}"
        ))
        .unwrap();
        assert_eq!(config.proxy_apis[0].api, None);
        assert_eq!(
            config.proxy_apis[0].config.as_deref(),
            Some(Path::new("/etc/traefik/traefik.toml"))
        );
        let err = validate(&format!(
            "host_id = \"web1\"\ncollector = \"https://c:7502\"\n{TLS}[traefik]\napi = \"192.0.2.1:8080\"\n[envoy]\nadmin = \"nine\"\napi = \"127.0.0.1:1\"\n"
        ))
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["traefik.api", "envoy.api", "envoy.admin"], "{err}");
    }

    #[test]
    fn https_collectors_need_tls_material() {
        let err = validate(
            "host_id = \"web1\"\ncollectors = [\"http://127.0.0.1:7502\", \"https://127.0.0.2:7502\"]\n[tls]\nplaintext = true\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["collectors[1]"], "{err}");
    }
}
