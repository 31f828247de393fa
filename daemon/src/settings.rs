//! Config-file plumbing shared by the agent and the collector.
//!
//! Config is layered as in sozu: a raw serde struct is read from TOML, every
//! problem is collected with its file path and key (unknown keys included,
//! through `serde_ignored`), then `validate()` turns the raw struct into the
//! typed config. A bad config is reported all at once and exits with code 64
//! (`EX_USAGE`), one line per problem.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// The exit code for a bad config or bad usage (sysexits `EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// One thing wrong with a config, located by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key such as `tls.cert` or `sites[2].url`; empty for the whole file.
    pub key: String,
    /// What is wrong, in lowercase words.
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file the problems are in (or a label such as `command line`).
    pub path: PathBuf,
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match problem.key.as_str() {
                "" => write!(f, "{path}: {}", problem.message)?,
                key => write!(f, "{path}: {key}: {}", problem.message)?,
            }
        }
        Ok(())
    }
}

/// Collects problems while validating a raw config.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem at `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Records a problem when `check` is an `Err`, passing the `Ok` value through.
    pub fn check<T, E: fmt::Display>(&mut self, key: &str, check: Result<T, E>) -> Option<T> {
        check.map_err(|e| self.push(key, e.to_string())).ok()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Finishes validation: `Ok(value)` when no problem was recorded.
    pub fn finish<T>(self, path: &Path, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                path: path.to_path_buf(),
                problems: self.0,
            })
        }
    }
}

/// Reads a TOML file into a raw config struct, reporting unknown keys as
/// problems rather than stopping at the first one.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, Problems), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    parse_toml(path, &text)
}

/// Parses TOML text; `path` only labels the problems.
pub fn parse_toml<T: DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<(T, Problems), ConfigError> {
    let mut problems = Problems::default();
    let mut unknown = Vec::new();
    let deserializer = toml::Deserializer::new(text);
    let parsed: Result<T, _> =
        serde_ignored::deserialize(deserializer, |key| unknown.push(key.to_string()));
    for key in unknown {
        problems.push(key, "unknown key");
    }
    match parsed {
        Ok(raw) => Ok((raw, problems)),
        Err(e) => {
            let message = e.message().trim().to_string();
            let location = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            problems.push("", format!("{message}{location}"));
            Err(ConfigError {
                path: path.to_path_buf(),
                problems: problems.0,
            })
        }
    }
}

/// The `[tls]` table both binaries share.
#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    /// Fleet CA certificate (PEM).
    pub ca: Option<PathBuf>,
    /// This process's certificate (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// No TLS at all: loopback only, for tests.
    #[serde(default)]
    pub plaintext: bool,
    /// Certificate revocation list (PEM) of the fleet CA; only the collector
    /// reads it (default: `crl.pem` beside the CA certificate, when present).
    pub crl: Option<PathBuf>,
}

/// How a gw502 process secures its gRPC connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// mTLS with the fleet CA and this process's certificate.
    Mutual {
        /// Fleet CA certificate (PEM).
        ca: PathBuf,
        /// This process's certificate (PEM).
        cert: PathBuf,
        /// Its private key (PEM).
        key: PathBuf,
    },
    /// No TLS: only on loopback, and only when configured.
    Plaintext,
}

impl RawTls {
    /// mTLS when ca, cert and key are all set; plaintext only when asked for
    /// alone. Anything else records problems under `tls.*` and gives `None`.
    pub fn validate(self, problems: &mut Problems) -> Option<Tls> {
        if self.plaintext && self.crl.is_some() {
            problems.push("tls.crl", "a revocation list needs mTLS, not plaintext");
        }
        match (self.plaintext, self.ca, self.cert, self.key) {
            (true, None, None, None) => Some(Tls::Plaintext),
            (true, ..) => {
                problems.push(
                    "tls.plaintext",
                    "plaintext cannot be combined with ca/cert/key",
                );
                None
            }
            (false, Some(ca), Some(cert), Some(key)) => Some(Tls::Mutual { ca, cert, key }),
            (false, ca, cert, key) => {
                for (name, value) in [("tls.ca", ca), ("tls.cert", cert), ("tls.key", key)] {
                    if value.is_none() {
                        problems.push(
                            name,
                            "missing (mTLS is required; tls.plaintext = true only on loopback, for tests)",
                        );
                    }
                }
                None
            }
        }
    }
}

/// A duration written as `10s`, `5m`, `7d`, `1h 30m` in config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

/// A byte size written as `64MiB`, `512KiB`, `1GB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `64MiB`, `10 MB`, `4096`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("invalid size {text:?}"))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            other => return Err(format!("invalid size unit {other:?} in {text:?}")),
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("size {text:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => ByteSize::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Raw {
        interval: Option<HumanDuration>,
        spool: Option<ByteSize>,
        #[serde(default)]
        nested: Nested,
    }

    #[derive(Debug, Default, Deserialize)]
    struct Nested {
        name: Option<String>,
    }

    #[test]
    fn unknown_keys_are_all_reported_with_their_path() {
        let text = "interval = \"10s\"\nbogus = 1\n[nested]\nname = \"x\"\ntypo = 2\n";
        let (raw, problems): (Raw, _) = parse_toml(Path::new("a.toml"), text).unwrap();
        assert_eq!(raw.interval, Some(HumanDuration(Duration::from_secs(10))));
        assert_eq!(raw.nested.name.as_deref(), Some("x"));
        let err = problems.finish(Path::new("a.toml"), ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.toml: bogus: unknown key\na.toml: nested.typo: unknown key"
        );
    }

    #[test]
    fn type_errors_name_the_line() {
        let err = parse_toml::<Raw>(Path::new("b.toml"), "\ninterval = \"soon\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("b.toml: "), "{text}");
        assert!(text.contains("invalid duration \"soon\""), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("10 kb"), Ok(ByteSize(10_000)));
        assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("99999999999999999999GiB").is_err());
        let (raw, _): (Raw, _) = parse_toml(Path::new("c.toml"), "spool = 1024").unwrap();
        assert_eq!(raw.spool, Some(ByteSize(1024)));
    }
}
