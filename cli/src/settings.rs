//! Where gw502ctl finds the collector and its credentials.
//!
//! Four layers, highest precedence first: command-line flags, environment
//! variables (`GW502_*`), the TOML config file, and the all-in-one data dir
//! (`DIR/endpoint`, `DIR/pki/...`). Each setting is taken from the highest
//! layer that has it; a setting no layer has is a configuration error that
//! says what to set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::args::GlobalArgs;
use crate::error::CtlError;

/// The resolved connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Collector URL, e.g. `https://127.0.0.1:7502`.
    pub collector: String,
    /// CA certificate that signed the collector's certificate.
    pub ca: PathBuf,
    /// Client (operator) certificate.
    pub cert: PathBuf,
    /// Client private key.
    pub key: PathBuf,
}

/// One layer's view; `None` means "this layer does not say".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    collector: Option<String>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Layer {
    fn or(self, lower: Layer) -> Layer {
        Layer {
            collector: self.collector.or(lower.collector),
            ca: self.ca.or(lower.ca),
            cert: self.cert.or(lower.cert),
            key: self.key.or(lower.key),
        }
    }
}

/// Resolves the settings from `flags`, the environment as seen through
/// `env` (pass `|k| std::env::var(k).ok()`), the config file and the data dir.
pub fn resolve(
    flags: &GlobalArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, CtlError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let flag_layer = Layer {
        collector: flags.collector.clone(),
        ca: flags.ca.clone(),
        cert: flags.cert.clone(),
        key: flags.key.clone(),
    };
    let env_layer = Layer {
        collector: env("GW502_COLLECTOR"),
        ca: env("GW502_CA").map(PathBuf::from),
        cert: env("GW502_CERT").map(PathBuf::from),
        key: env("GW502_KEY").map(PathBuf::from),
    };
    let config_path = match flags
        .config
        .clone()
        .or_else(|| env("GW502_CONFIG").map(PathBuf::from))
    {
        Some(explicit) => Some(explicit),
        None => default_config_path(env).filter(|p| p.exists()),
    };
    let file_layer = match &config_path {
        Some(path) => read_config(path)?,
        None => Layer::default(),
    };
    let data_dir = flags
        .data_dir
        .clone()
        .or_else(|| env("GW502_DATA_DIR").map(PathBuf::from));
    let dir_layer = match &data_dir {
        Some(dir) => read_data_dir(dir)?,
        None => Layer::default(),
    };
    let merged = flag_layer.or(env_layer).or(file_layer).or(dir_layer);
    let missing = |what: &str, flag: &str, var: &str, key: &str| {
        let mut hint = format!("set {flag}, {var}, `{key}` in the config file, or --data-dir");
        if let Some(dir) = data_dir.as_ref().filter(|_| key == "collector") {
            hint.push_str(&format!(
                " ({} is missing: is the all-in-one collector running?)",
                dir.join("endpoint").display()
            ));
        }
        CtlError::Config(format!("no {what}: {hint}"))
    };
    Ok(Settings {
        collector: merged.collector.ok_or_else(|| {
            missing(
                "collector address",
                "--collector URL",
                "GW502_COLLECTOR",
                "collector",
            )
        })?,
        ca: merged
            .ca
            .ok_or_else(|| missing("CA certificate", "--ca FILE", "GW502_CA", "ca"))?,
        cert: merged
            .cert
            .ok_or_else(|| missing("client certificate", "--cert FILE", "GW502_CERT", "cert"))?,
        key: merged
            .key
            .ok_or_else(|| missing("client key", "--key FILE", "GW502_KEY", "key"))?,
    })
}

/// `$XDG_CONFIG_HOME/gw502/ctl.toml`, else `$HOME/.config/gw502/ctl.toml`.
fn default_config_path(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("gw502").join("ctl.toml"))
}

/// The longest config file or endpoint file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;

fn read_small(path: &Path) -> Result<String, CtlError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| CtlError::Config(format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CtlError::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

fn read_config(path: &Path) -> Result<Layer, CtlError> {
    let text = read_small(path)?;
    let mut layer: Layer = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| {
                text.as_bytes()[..s.start.min(text.len())]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            })
            .unwrap_or(1);
        CtlError::Config(format!(
            "config {} line {line}: {}",
            path.display(),
            e.message().replace('\n', " ")
        ))
    })?;
    // Relative paths in the file are relative to the file.
    let base = path.parent().unwrap_or(Path::new("."));
    for p in [&mut layer.ca, &mut layer.cert, &mut layer.key]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(layer)
}

fn read_data_dir(dir: &Path) -> Result<Layer, CtlError> {
    let endpoint_path = dir.join("endpoint");
    let collector = if endpoint_path.exists() {
        let text = read_small(&endpoint_path)?;
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        Some(
            line.map(str::to_owned)
                .ok_or_else(|| CtlError::Config(format!("{} is empty", endpoint_path.display())))?,
        )
    } else {
        None
    };
    let pki = dir.join("pki");
    Ok(Layer {
        collector,
        ca: Some(pki.join("ca.crt")),
        cert: Some(pki.join("operators").join("admin.crt")),
        key: Some(pki.join("operators").join("admin.key")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn data_dir(endpoint: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("endpoint"), endpoint).unwrap();
        dir
    }

    #[test]
    fn data_dir_alone() {
        let dir = data_dir("\nhttps://127.0.0.1:7502\n");
        let flags = GlobalArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let s = resolve(&flags, env_of(&[])).unwrap();
        assert_eq!(s.collector, "https://127.0.0.1:7502");
        assert_eq!(s.ca, dir.path().join("pki/ca.crt"));
        assert_eq!(s.cert, dir.path().join("pki/operators/admin.crt"));
        assert_eq!(s.key, dir.path().join("pki/operators/admin.key"));
    }

    #[test]
    fn precedence_flags_env_file_dir() {
        let dir = data_dir("https://dir:1");
        let cfg_dir = tempfile::tempdir().unwrap();
        let cfg = cfg_dir.path().join("ctl.toml");
        std::fs::write(
            &cfg,
            "collector = \"https://file:1\"\nca = \"file-ca.crt\"\ncert = \"/file/cert\"\n",
        )
        .unwrap();
        let dir_s = dir.path().to_str().unwrap();
        let cfg_s = cfg.to_str().unwrap();
        let env = env_of(&[
            ("GW502_DATA_DIR", dir_s),
            ("GW502_CONFIG", cfg_s),
            ("GW502_COLLECTOR", "https://env:1"),
            ("GW502_CA", "/env/ca"),
        ]);
        let flags = GlobalArgs {
            collector: Some("https://flag:1".into()),
            ..Default::default()
        };
        let s = resolve(&flags, env).unwrap();
        assert_eq!(s.collector, "https://flag:1"); // flag beats env
        assert_eq!(s.ca, PathBuf::from("/env/ca")); // env beats file
        assert_eq!(s.cert, PathBuf::from("/file/cert")); // file beats dir
        assert_eq!(s.key, dir.path().join("pki/operators/admin.key")); // dir last

        // Without the flag and env, the file wins, relative to its directory.
        let env = env_of(&[("GW502_DATA_DIR", dir_s), ("GW502_CONFIG", cfg_s)]);
        let s = resolve(&GlobalArgs::default(), env).unwrap();
        assert_eq!(s.collector, "https://file:1");
        assert_eq!(s.ca, cfg_dir.path().join("file-ca.crt"));
    }

    #[test]
    fn default_config_file_is_used_when_present() {
        let xdg = tempfile::tempdir().unwrap();
        std::fs::create_dir(xdg.path().join("gw502")).unwrap();
        std::fs::write(
            xdg.path().join("gw502/ctl.toml"),
            "collector = \"https://x:1\"\nca = \"/a\"\ncert = \"/b\"\nkey = \"/c\"\n",
        )
        .unwrap();
        let env = env_of(&[("XDG_CONFIG_HOME", xdg.path().to_str().unwrap())]);
        assert_eq!(
            resolve(&GlobalArgs::default(), env).unwrap().collector,
            "https://x:1"
        );
        // An absent default file is not an error; the missing setting is.
        let empty = tempfile::tempdir().unwrap();
        let env = env_of(&[("HOME", empty.path().to_str().unwrap())]);
        let err = resolve(&GlobalArgs::default(), env).unwrap_err();
        assert_eq!(err.exit_code(), 64);
        assert!(
            err.to_string().contains("--collector URL, GW502_COLLECTOR"),
            "{err}"
        );
    }

    #[test]
    fn config_errors_are_one_line_with_path() {
        let cfg_dir = tempfile::tempdir().unwrap();
        let cfg = cfg_dir.path().join("ctl.toml");
        std::fs::write(&cfg, "collector = \"https://x:1\"\ncolector = 1\n").unwrap();
        let flags = GlobalArgs {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let err = resolve(&flags, env_of(&[])).unwrap_err().to_string();
        assert!(
            err.contains(cfg.to_str().unwrap()) && err.contains("line 2"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let missing = GlobalArgs {
            config: Some(cfg_dir.path().join("nope.toml")),
            ..Default::default()
        };
        assert!(
            resolve(&missing, env_of(&[]))
                .unwrap_err()
                .to_string()
                .contains("nope.toml")
        );
    }

    #[test]
    fn missing_endpoint_in_data_dir_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let flags = GlobalArgs {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let err = resolve(&flags, env_of(&[])).unwrap_err().to_string();
        assert!(err.contains("endpoint is missing"), "{err}");
    }
}
