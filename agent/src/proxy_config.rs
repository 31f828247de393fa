//! The proxy-config evidence source: finds which reverse proxies run on the
//! host (nginx, HAProxy, Apache, Caddy), what upstream targets and log files
//! their configs name, whether the config test passes (`nginx -T`,
//! `haproxy -c`), and when the effective config last changed.
//!
//! Parsers are pure and live in one submodule per proxy; this file only runs
//! commands, reads files and keeps the per-proxy config hash between reports.
//! A proxy that is absent is not listed; one whose test fails is listed with
//! `test.ok = false` and whatever could be parsed.

pub mod apache;
pub mod caddy;
mod command;
pub mod haproxy;
pub mod nginx;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gw502_proto::v1::{ConfigTest, ProxyConfig, ProxyConfigSection};
use sha2::{Digest, Sha256};

use crate::proxy_log::access::AccessFormat;
use crate::source::{Roots, Scope, Source, Unavailable};
use command::run_bounded;

/// The most bytes of a config file or command output read.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Access log path to its line format, shared with the access-log source.
pub type AccessFormats = Arc<RwLock<BTreeMap<String, AccessFormat>>>;

/// Where to look for each proxy. Paths are host paths, resolved under
/// [`Roots`] at collect time (so `/etc/...` follows `roots.etc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfigSettings {
    /// The nginx binary (default `nginx`, found on PATH).
    pub nginx_bin: PathBuf,
    /// `-c` for nginx; `None` uses nginx's compiled-in path.
    pub nginx_conf: Option<PathBuf>,
    /// `-p` for nginx; `None` uses nginx's compiled-in prefix.
    pub nginx_prefix: Option<PathBuf>,
    /// The haproxy binary, used for `haproxy -c`.
    pub haproxy_bin: PathBuf,
    /// haproxy.cfg (default `/etc/haproxy/haproxy.cfg`).
    pub haproxy_cfg: PathBuf,
    /// Apache's config dir (default `/etc/apache2`).
    pub apache_dir: PathBuf,
    /// The Caddyfile (default `/etc/caddy/Caddyfile`).
    pub caddyfile: PathBuf,
    /// Bound on each config-test command.
    pub timeout: Duration,
}

impl Default for ProxyConfigSettings {
    fn default() -> Self {
        Self {
            nginx_bin: PathBuf::from("nginx"),
            nginx_conf: None,
            nginx_prefix: None,
            haproxy_bin: PathBuf::from("haproxy"),
            haproxy_cfg: PathBuf::from("/etc/haproxy/haproxy.cfg"),
            apache_dir: PathBuf::from("/etc/apache2"),
            caddyfile: PathBuf::from("/etc/caddy/Caddyfile"),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The proxy-config source. Remembers each proxy's config hash and the time
/// it last changed.
#[derive(Debug, Default)]
pub struct ProxyConfigSource {
    settings: ProxyConfigSettings,
    /// kind to (hash, changed_at_ms).
    seen: BTreeMap<String, (String, i64)>,
    formats: AccessFormats,
}

impl ProxyConfigSource {
    /// A source reading the proxies named in `settings`.
    pub fn new(settings: ProxyConfigSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// The access log formats this source learns from configs, to hand to
    /// [`crate::proxy_log::AccessLogSource::new`].
    pub fn access_formats(&self) -> AccessFormats {
        Arc::clone(&self.formats)
    }

    async fn nginx(&self) -> Option<(ProxyConfig, Vec<(String, AccessFormat)>)> {
        let s = &self.settings;
        let mut args: Vec<std::ffi::OsString> = vec!["-T".into()];
        if let Some(conf) = &s.nginx_conf {
            args.extend(["-c".into(), conf.clone().into_os_string()]);
        }
        if let Some(prefix) = &s.nginx_prefix {
            args.extend(["-p".into(), prefix.clone().into_os_string()]);
        }
        let out = run_bounded(&s.nginx_bin, &args, s.timeout).await.ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let prefix = s
            .nginx_prefix
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let dump = nginx::parse_dump_with_prefix(
            &text,
            prefix.as_deref().unwrap_or(nginx::DEFAULT_PREFIX),
        );
        let mut config = dump.config;
        config.unit = "nginx.service".to_string();
        config.test = Some(out.test());
        config.config_hash = sha256_hex(if text.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        });
        let formats = dump
            .access_log_formats
            .into_iter()
            .map(|(path, template)| (path, AccessFormat::nginx(&template)))
            .collect();
        Some((config, formats))
    }

    async fn haproxy(&self, roots: &Roots) -> Option<ProxyConfig> {
        let path = roots.host_path(&self.settings.haproxy_cfg);
        let bytes = read_bounded(&path).await?;
        let mut config = haproxy::parse_cfg(&String::from_utf8_lossy(&bytes));
        config.unit = "haproxy.service".to_string();
        config.config_hash = sha256_hex(&bytes);
        let args = ["-c".into(), "-f".into(), path.into_os_string()];
        config.test = Some(
            match run_bounded(&self.settings.haproxy_bin, &args, self.settings.timeout).await {
                Ok(out) => out.test(),
                Err(e) => ConfigTest {
                    ran: false,
                    ok: false,
                    output: e.to_string(),
                },
            },
        );
        Some(config)
    }

    async fn apache(&self, roots: &Roots) -> Option<(ProxyConfig, Vec<(String, AccessFormat)>)> {
        let dir = roots.host_path(&self.settings.apache_dir);
        let mut text =
            String::from_utf8_lossy(&read_bounded(&dir.join("apache2.conf")).await?).into_owned();
        for sub in ["conf-enabled", "sites-enabled"] {
            let Ok(mut entries) = tokio::fs::read_dir(dir.join(sub)).await else {
                continue;
            };
            let mut paths = Vec::new();
            while let Ok(Some(e)) = entries.next_entry().await {
                paths.push(e.path());
            }
            paths.sort();
            for p in paths {
                if let Some(bytes) = read_bounded(&p).await {
                    text.push('\n');
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        let parsed = apache::parse_conf(&text);
        let mut config = parsed.config;
        config.unit = "apache2.service".to_string();
        config.config_hash = sha256_hex(text.as_bytes());
        config.test = Some(ConfigTest::default());
        let formats = parsed
            .custom_logs
            .into_iter()
            .map(|c| {
                let f = AccessFormat::apache_named(&c.format);
                (c.path, f)
            })
            .collect();
        Some((config, formats))
    }

    async fn caddy(&self, roots: &Roots) -> Option<ProxyConfig> {
        let bytes = read_bounded(&roots.host_path(&self.settings.caddyfile)).await?;
        let mut config = caddy::parse_caddyfile(&String::from_utf8_lossy(&bytes));
        config.unit = "caddy.service".to_string();
        config.config_hash = sha256_hex(&bytes);
        config.test = Some(ConfigTest::default());
        Some(config)
    }

    /// Sets `changed_at_ms` from the previous hash of the same proxy kind.
    fn track_change(&mut self, config: &mut ProxyConfig, now_ms: i64) {
        let changed_at = match self.seen.get(&config.kind) {
            Some((hash, at)) if *hash == config.config_hash => *at,
            Some(_) => now_ms,
            None => 0,
        };
        config.changed_at_ms = changed_at;
        self.seen.insert(
            config.kind.clone(),
            (config.config_hash.clone(), changed_at),
        );
    }
}

impl Source for ProxyConfigSource {
    type Section = ProxyConfigSection;

    fn name(&self) -> &'static str {
        "proxy_config"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ProxyConfigSection, Unavailable> {
        let mut proxies = Vec::new();
        let mut formats = BTreeMap::new();
        if let Some((config, f)) = self.nginx().await {
            proxies.push(config);
            formats.extend(f);
        }
        if let Some(config) = self.haproxy(&scope.roots).await {
            proxies.push(config);
        }
        if let Some((config, f)) = self.apache(&scope.roots).await {
            proxies.push(config);
            formats.extend(f);
        }
        if let Some(config) = self.caddy(&scope.roots).await {
            proxies.push(config);
        }
        let now = now_ms();
        for config in &mut proxies {
            self.track_change(config, now);
        }
        if let Ok(mut shared) = self.formats.write() {
            *shared = formats;
        }
        Ok(ProxyConfigSection {
            unavailable: String::new(),
            proxies,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES)
        .read_to_end(&mut buf)
        .await
        .ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests;
