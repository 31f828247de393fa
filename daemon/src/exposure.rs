//! Secrets that everyone on the host can read: a warning at start.
//!
//! A config file readable by every user must not hold a secret (a database
//! URL with a password, a token), and a secret file it names (a TLS private
//! key, a webhook HMAC `secret_file`) must not be readable by everyone
//! either. The check walks the parsed TOML, so both daemons share it
//! without listing their keys twice; it warns and never refuses to start,
//! since the fix (`chmod`) is the operator's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One secret readable by everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The readable file: the config itself, or the secret file it names.
    pub file: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// The dotted config key holding or naming the secret.
    pub key: String,
    /// What the secret is.
    pub what: &'static str,
}

/// Keys that name a file holding a secret.
const SECRET_FILE_KEYS: [&str; 3] = ["key", "secret_file", "password_file"];
/// Keys whose inline value is a secret.
const SECRET_KEYS: [&str; 4] = ["token", "password", "secret", "api_key"];

/// Finds the secrets in the config at `path` (already parsed as `text`)
/// that are readable by everyone. Relative secret paths resolve against the
/// working directory, as the daemons open them.
pub fn exposures(path: &Path, text: &str) -> Vec<Exposure> {
    let Ok(value) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let config_mode = world_readable(path);
    walk(
        &toml::Value::Table(value),
        String::new(),
        &mut |key, leaf, value| {
            let Some(text) = value.as_str() else {
                return;
            };
            if SECRET_FILE_KEYS.contains(&leaf) {
                if let Some(mode) = world_readable(Path::new(text)) {
                    found.push(Exposure {
                        file: PathBuf::from(text),
                        mode,
                        key: key.to_owned(),
                        what: "secret file",
                    });
                }
            } else if let Some(mode) = config_mode {
                let what = if SECRET_KEYS.contains(&leaf) {
                    Some("inline secret")
                } else if has_password(text) {
                    Some("url with a password")
                } else {
                    None
                };
                if let Some(what) = what {
                    found.push(Exposure {
                        file: path.to_owned(),
                        mode,
                        key: key.to_owned(),
                        what,
                    });
                }
            }
        },
    );
    found
}

/// Logs one warning per exposed secret in the config at `path`.
pub fn warn_exposed(path: &Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for e in exposures(path, &text) {
        tracing::warn!(
            file = %e.file.display(),
            mode = %format!("{:04o}", e.mode),
            key = %e.key,
            what = e.what,
            "a secret is readable by everyone on this host; chmod o-r the file"
        );
    }
}

fn walk(value: &toml::Value, key: String, f: &mut impl FnMut(&str, &str, &toml::Value)) {
    match value {
        toml::Value::Table(table) => {
            for (name, child) in table {
                let path = if key.is_empty() {
                    name.clone()
                } else {
                    format!("{key}.{name}")
                };
                walk(child, path, f);
            }
        }
        toml::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{key}[{i}]"), f);
            }
        }
        leaf => {
            let name = key.rsplit('.').next().unwrap_or(&key);
            let name = name.split('[').next().unwrap_or(name);
            f(&key, name, leaf);
        }
    }
}

/// The mode of `path` when others may read it.
fn world_readable(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o004 != 0).then_some(mode)
}

/// `scheme://user:password@host...`
fn has_password(text: &str) -> bool {
    let Some((_, rest)) = text.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| {
        userinfo
            .split_once(':')
            .is_some_and(|(_, pw)| !pw.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn urls_with_passwords() {
        assert!(has_password("postgres://gw502:s3cret@db:5432/gw502"));
        assert!(!has_password("postgres://gw502@db/gw502"));
        assert!(!has_password("sqlite:///var/lib/gw502/c.db"));
        assert!(!has_password("https://example.com/a@b"));
    }

    #[test]
    fn world_readable_config_and_key_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("c.key");
        let hmac = dir.path().join("hook.secret");
        std::fs::write(&key, "k").unwrap();
        std::fs::write(&hmac, "s").unwrap();
        chmod(&key, 0o644);
        chmod(&hmac, 0o600);
        let config = dir.path().join("collector.toml");
        let text = format!(
            "database = \"postgres://u:pw@db/x\"\n[tls]\nkey = \"{}\"\n[routing.receivers.ops]\nkind = \"webhook\"\nsecret_file = \"{}\"\n",
            key.display(),
            hmac.display()
        );
        std::fs::write(&config, &text).unwrap();
        chmod(&config, 0o644);
        let found = exposures(&config, &text);
        let keys: Vec<(&str, u32)> = found.iter().map(|e| (e.key.as_str(), e.mode)).collect();
        assert_eq!(keys, [("database", 0o644), ("tls.key", 0o644)]);
        assert_eq!(found[1].file, key);

        chmod(&config, 0o640);
        chmod(&key, 0o600);
        assert!(exposures(&config, &text).is_empty());
    }
}
