//! The proxy-config source: finds which reverse proxies run on the host,
//! what upstream targets and log files their configs name, whether the
//! config test passes, and when the effective config last changed.
//!
//! Everything about a proxy (where its config is, how to parse and test it)
//! comes from the `gw502-proxy` registry; this file only runs commands with
//! bounds, reads files under the `/etc` root and keeps the per-proxy config
//! hash between reports. A proxy that is absent is not listed; one whose
//! test fails is listed with `test.ok = false` and whatever could be parsed;
//! one whose test could not run as this user (the sandboxed agent cannot
//! create nginx's pid file) is listed with `test.ran = false` and the reason,
//! and its config files are read directly instead. A config test that is a
//! command of its own (`haproxy -c`, `apachectl -t`, `caddy validate`) runs
//! when the config text changes and at least every [`TEST_REFRESH`], not on
//! every report.

pub mod api;
pub(crate) mod command;
pub mod http_get;
pub(crate) mod unit_files;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gw502_proto::v1::{ConfigTest, ProxyConfig, ProxyConfigSection};
use gw502_proxy::{AccessFormat, ConfigLocation, ConfigSource, Proxy, ProxyKind, TestReading};
use sha2::{Digest, Sha256};

use crate::source::{Roots, Scope, Source, Unavailable};
use command::run_bounded;

/// The most bytes of a config file or command output read.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
/// The most files read when following a proxy's includes by hand.
const MAX_CONFIG_FILES: usize = 256;

/// Access log path to its line format, shared with the access-log source.
pub type AccessFormats = Arc<RwLock<BTreeMap<String, AccessFormat>>>;

/// Where to look for each proxy. Paths are host paths, resolved under
/// [`Roots`] at collect time (so `/etc/...` follows `roots.etc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfigSettings {
    /// Per proxy kind, where its binary and config are; a kind not listed
    /// is looked for at its default location (`Proxy::default_location`).
    pub locations: BTreeMap<ProxyKind, ConfigLocation>,
    /// Bound on each config-test command.
    pub timeout: Duration,
    /// Per proxy kind with an API (Traefik, Envoy), its loopback address;
    /// asked only when that proxy's config is found ([`api`]).
    pub apis: BTreeMap<ProxyKind, SocketAddr>,
    /// Bound on each API request.
    pub api_timeout: Duration,
}

impl Default for ProxyConfigSettings {
    fn default() -> Self {
        Self {
            locations: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            apis: BTreeMap::new(),
            api_timeout: Duration::from_secs(2),
        }
    }
}

impl ProxyConfigSettings {
    /// Where `proxy` is looked for.
    pub fn location(&self, proxy: &dyn Proxy) -> ConfigLocation {
        self.locations
            .get(&proxy.kind())
            .cloned()
            .unwrap_or_else(|| proxy.default_location())
    }

    /// Sets one kind's binary, keeping the rest of its default location.
    pub fn with_bin(mut self, kind: ProxyKind, bin: PathBuf) -> Self {
        let proxy = gw502_proxy::proxy(kind);
        let at = self
            .locations
            .entry(kind)
            .or_insert_with(|| proxy.default_location());
        at.bin = bin;
        self
    }

    /// Sets one kind's main config file, keeping the rest of its location.
    pub fn with_config(mut self, kind: ProxyKind, config: PathBuf) -> Self {
        let proxy = gw502_proxy::proxy(kind);
        let at = self
            .locations
            .entry(kind)
            .or_insert_with(|| proxy.default_location());
        at.config = Some(config);
        self
    }

    /// Sets one kind's API address (off when `None`).
    pub fn with_api(mut self, kind: ProxyKind, addr: Option<SocketAddr>) -> Self {
        match addr {
            Some(addr) => self.apis.insert(kind, addr),
            None => self.apis.remove(&kind),
        };
        self
    }
}

/// How long a config test's result stands for a config that has not changed. A test
/// can fail on an unchanged config (a name in it no longer resolves), so it runs again
/// after this; a changed config is tested at once.
pub const TEST_REFRESH: Duration = Duration::from_secs(60);

/// The proxy-config source. Remembers each proxy's config hash and the time
/// it last changed, and the last config test of each.
#[derive(Debug, Default)]
pub struct ProxyConfigSource {
    settings: ProxyConfigSettings,
    /// kind to (hash, changed_at_ms).
    seen: BTreeMap<String, (String, i64)>,
    /// kind to (hash of the config tested, when, the result).
    tests: BTreeMap<String, (String, Instant, ConfigTest)>,
    formats: AccessFormats,
}

/// One proxy's config as read: the wire config and its access formats.
type Read = (ProxyConfig, Vec<(String, AccessFormat)>);

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

    /// Reads one proxy's config the way its model says; `None` when the
    /// proxy is not installed.
    async fn read(&mut self, proxy: &dyn Proxy, roots: &Roots) -> Option<Read> {
        let mut at = self.settings.location(proxy);
        if proxy.reads_unit() {
            let unit = proxy.units()[0];
            let process = at
                .bin
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // No unit file: not installed, and no walk of /proc for its process.
            let files = unit_files::read(roots, unit).await;
            if files.is_empty() || !unit_files::in_use(roots, unit, &process).await {
                return None;
            }
            if let Some(moved) = proxy.locate(&files, &at) {
                at = moved;
            }
        }
        let timeout = self.settings.timeout;
        let (text, hash, test) = match proxy.config_source(&at) {
            ConfigSource::Dump { args, fallback } => {
                let out = run_bounded(&at.bin, &args, timeout).await.ok()?;
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                let reading = proxy.read_test(out.success, &stderr);
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.trim().is_empty()
                    && matches!(reading, TestReading::Indeterminate(_))
                    && let Some(main) = fallback
                {
                    text = read_tree(proxy, &main, roots).await.unwrap_or_default();
                }
                let hash = sha256_hex(if text.is_empty() {
                    &out.stderr
                } else {
                    text.as_bytes()
                });
                (text, hash, reading.to_wire(&stderr))
            }
            ConfigSource::File(path) => {
                let host = roots.host_path(&path);
                let bytes = read_bounded(&host).await?;
                let hash = sha256_hex(&bytes);
                let test = self.tested(proxy, &at, &host, &hash).await;
                (String::from_utf8_lossy(&bytes).into_owned(), hash, test)
            }
            ConfigSource::Includes(main) => {
                let text = read_tree(proxy, &main, roots).await?;
                let hash = sha256_hex(text.as_bytes());
                (text, hash, ConfigTest::default())
            }
            ConfigSource::Tree { main, dirs } => {
                let host = roots.host_path(&main);
                let mut text = String::from_utf8_lossy(&read_bounded(&host).await?).into_owned();
                for dir in dirs {
                    for (_, bytes) in read_dir_files(&roots.host_path(&dir)).await {
                        text.push('\n');
                        text.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                let hash = sha256_hex(text.as_bytes());
                let test = self.tested(proxy, &at, &host, &hash).await;
                (text, hash, test)
            }
        };
        let discovered = proxy.parse_config(&text, &at);
        let mut config = discovered.config;
        config.kind = proxy.kind().as_str().to_string();
        config.unit = proxy.units()[0].to_string();
        config.config_hash = hash;
        config.test = Some(test);
        Some((config, discovered.access_formats))
    }

    /// The proxy's config test of `config` (whose text hashes to `hash`): the last
    /// result while the hash is the same and the result younger than [`TEST_REFRESH`],
    /// else a new run. Most reports then spawn no test: under load a `haproxy -c` or
    /// `apachectl -t` costs a few hundred milliseconds of every report's gathering.
    async fn tested(
        &mut self,
        proxy: &dyn Proxy,
        at: &ConfigLocation,
        config: &Path,
        hash: &str,
    ) -> ConfigTest {
        let kind = proxy.kind().as_str();
        if let Some((tested, when, test)) = self.tests.get(kind)
            && tested == hash
            && when.elapsed() < TEST_REFRESH
        {
            return test.clone();
        }
        let test = self.test(proxy, at, config).await;
        self.tests.insert(
            kind.to_string(),
            (hash.to_string(), Instant::now(), test.clone()),
        );
        test
    }

    /// Runs the proxy's own config test, if it has one.
    async fn test(&self, proxy: &dyn Proxy, at: &ConfigLocation, config: &Path) -> ConfigTest {
        let Some(args) = proxy.config_test(at, config) else {
            return ConfigTest::default();
        };
        match run_bounded(&at.bin, &args, self.settings.timeout).await {
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                proxy.read_test(out.success, &stderr).to_wire(&stderr)
            }
            Err(e) => ConfigTest {
                ran: false,
                ok: false,
                output: e.to_string(),
            },
        }
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

/// Reads `main` and the files its includes name (globs matched against
/// directory listings), as the proxy would have dumped them; `None` when
/// `main` cannot be read.
async fn read_tree(proxy: &dyn Proxy, main: &Path, roots: &Roots) -> Option<String> {
    let first = read_bounded(&roots.host_path(main)).await?;
    let mut files = vec![(
        main.display().to_string(),
        String::from_utf8_lossy(&first).into_owned(),
    )];
    let mut next = 0;
    while next < files.len() && files.len() < MAX_CONFIG_FILES {
        let (path, text) = files[next].clone();
        next += 1;
        for pattern in proxy.includes(&path, &text) {
            let Some((dir, _)) = pattern.rsplit_once('/') else {
                continue;
            };
            for (found, bytes) in read_dir_files(&roots.host_path(Path::new(dir))).await {
                let name = found
                    .file_name()
                    .map(|n| format!("{dir}/{}", n.to_string_lossy()))
                    .unwrap_or_default();
                let seen = files.iter().any(|(p, _)| *p == name);
                if !seen && gw502_proxy::glob_match(&pattern, &name) {
                    files.push((name, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
    }
    Some(proxy.join_files(&files))
}

/// Every regular file of `dir` with its bytes, in name order.
async fn read_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    while let Ok(Some(e)) = entries.next_entry().await {
        paths.push(e.path());
    }
    paths.sort();
    let mut out = Vec::new();
    for p in paths.into_iter().take(MAX_CONFIG_FILES) {
        if let Some(bytes) = read_bounded(&p).await {
            out.push((p, bytes));
        }
    }
    out
}

impl Source for ProxyConfigSource {
    type Section = ProxyConfigSection;

    fn name(&self) -> &'static str {
        "proxy_config"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<ProxyConfigSection, Unavailable> {
        let mut proxies = Vec::new();
        let mut formats = BTreeMap::new();
        for proxy in gw502_proxy::all() {
            if let Some((mut config, f)) = self.read(proxy, &scope.roots).await {
                if let Some(addr) = self.settings.apis.get(&proxy.kind()) {
                    let timeout = self.settings.api_timeout;
                    if let Err(error) =
                        api::complete(proxy.kind(), *addr, &mut config, timeout).await
                    {
                        tracing::debug!(%error, kind = %proxy.kind(), "proxy api did not answer, keeping the config files' view");
                    }
                }
                proxies.push(config);
                formats.extend(f);
            }
        }
        let now = gw502_vocab::clock::now_ms();
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
pub(crate) mod tests;
