//! What a lab host should be: its name, address, files and which units it runs.
//!
//! A [`HostSpec`] is plain data so scenario tests can build it field by field or with the
//! small builder methods, and fixture builders ([`super::fixtures`]) can hand out the file
//! lists for common shapes (nginx in front of an app, PHP-FPM, an HAProxy edge).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::bail;

/// A file to place in a host before it boots: absolute path inside the host, contents, mode.
pub type LabFile = (PathBuf, String, u32);

/// Everything needed to boot one lab host.
#[derive(Debug, Clone, Default)]
pub struct HostSpec {
    /// Host name (also the machine name and hostname inside), e.g. `host1`.
    pub name: String,
    /// The host's address is `10.77.0.(10 + index)`.
    pub index: u8,
    /// Files written into the host's root before boot (units, configs, app programs).
    pub files: Vec<LabFile>,
    /// Units to enable (wanted by `multi-user.target`, `timers.target` for timers).
    pub enable: Vec<String>,
    /// Extra units to mask besides the image's services the host should not run.
    pub mask: Vec<String>,
    /// Extra `/etc/hosts` lines, e.g. other lab hosts by name.
    pub hosts_entries: Vec<(String, Ipv4Addr)>,
    /// Symlinks to place (path inside the host, target), e.g. `/etc/localtime`.
    pub links: Vec<(PathBuf, PathBuf)>,
    /// System calls nspawn's filter lets through besides its defaults
    /// (`--system-call-filter`), e.g. the keyring calls a container engine's runc makes.
    pub syscalls: Vec<String>,
}

impl HostSpec {
    /// An empty host `name` with address `10.77.0.(10 + index)`.
    pub fn new(name: impl Into<String>, index: u8) -> Self {
        Self {
            name: name.into(),
            index,
            ..Self::default()
        }
    }

    /// Add one file.
    pub fn file(
        mut self,
        path: impl Into<PathBuf>,
        contents: impl Into<String>,
        mode: u32,
    ) -> Self {
        self.files.push((path.into(), contents.into(), mode));
        self
    }

    /// Add several files, e.g. from a fixture builder.
    pub fn files(mut self, files: impl IntoIterator<Item = LabFile>) -> Self {
        self.files.extend(files);
        self
    }

    /// Enable one unit.
    pub fn enabled(mut self, unit: impl Into<String>) -> Self {
        self.enable.push(unit.into());
        self
    }

    /// Mask one unit.
    pub fn masked(mut self, unit: impl Into<String>) -> Self {
        self.mask.push(unit.into());
        self
    }

    /// Let `names` through nspawn's system call filter.
    pub fn allow_syscalls(mut self, names: &[&str]) -> Self {
        self.syscalls.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// Add a symlink `path -> target` inside the host.
    pub fn link(mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.links.push((path.into(), target.into()));
        self
    }

    /// Add an `/etc/hosts` entry.
    pub fn host_entry(mut self, name: impl Into<String>, ip: Ipv4Addr) -> Self {
        self.hosts_entries.push((name.into(), ip));
        self
    }

    /// The address the host gets on the lab bridge.
    pub fn ip(&self) -> Ipv4Addr {
        host_ip(self.index)
    }

    /// Check the spec before anything is mounted.
    pub fn validate(&self) -> anyhow::Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.name.starts_with('-');
        if !name_ok {
            bail!(
                "host name {:?} must be 1-32 chars of a-z, 0-9 and -",
                self.name
            );
        }
        if self.index > 200 {
            bail!("host {} index {} is above 200", self.name, self.index);
        }
        for unit in self.enable.iter().chain(&self.mask) {
            if !valid_unit_name(unit) {
                bail!("host {}: {unit:?} is not a unit name", self.name);
            }
        }
        let enable: Vec<String> = self.enable.iter().map(|u| unit_file_name(u)).collect();
        if let Some(both) = self
            .mask
            .iter()
            .map(|u| unit_file_name(u))
            .find(|u| enable.contains(u))
        {
            bail!("host {}: unit {both} is both enabled and masked", self.name);
        }
        for (path, _, _) in &self.files {
            if !path.is_absolute() {
                bail!(
                    "host {}: file path {} is not absolute",
                    self.name,
                    path.display()
                );
            }
            if shadowed_inside(path) {
                bail!(
                    "host {}: {} would be hidden by a mount inside the host",
                    self.name,
                    path.display()
                );
            }
        }
        for (name, _) in &self.hosts_entries {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
                bail!("host {}: bad /etc/hosts name {name:?}", self.name);
            }
        }
        Ok(())
    }
}

/// Whether `path` lies where the booted host has a mount of its own (nspawn mounts `/run`,
/// `/tmp`, `/proc`, `/sys` and `/dev`), so a file written into the overlay root is not seen.
pub fn shadowed_inside(path: &std::path::Path) -> bool {
    ["/run", "/var/run", "/tmp", "/proc", "/sys", "/dev"]
        .iter()
        .any(|mount| path.starts_with(mount))
}

/// The lab address of host `index`.
pub fn host_ip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 10 + index.min(200))
}

/// Whether `unit` is a plausible unit name (no paths, no spaces).
fn valid_unit_name(unit: &str) -> bool {
    !unit.is_empty()
        && unit.len() <= 128
        && !unit.starts_with('.')
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b))
}

/// `unit` with `.service` appended when it has no unit type suffix.
pub fn unit_file_name(unit: &str) -> String {
    const TYPES: [&str; 6] = [
        ".service", ".socket", ".timer", ".target", ".path", ".mount",
    ];
    if TYPES.iter().any(|t| unit.ends_with(t)) {
        unit.to_owned()
    } else {
        format!("{unit}.service")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_address() {
        let spec = HostSpec::new("host1", 1)
            .file("/etc/x", "y", 0o644)
            .enabled("nginx")
            .masked("cron.service")
            .host_entry("host2", Ipv4Addr::new(10, 77, 0, 12));
        assert_eq!(spec.ip(), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(spec.files.len(), 1);
        spec.validate().unwrap();
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(HostSpec::new("Host 1", 1).validate().is_err());
        assert!(HostSpec::new("", 1).validate().is_err());
        assert!(HostSpec::new("h", 201).validate().is_err());
        assert!(
            HostSpec::new("h", 1)
                .file("etc/x", "", 0o644)
                .validate()
                .is_err()
        );
        assert!(HostSpec::new("h", 1).enabled("../evil").validate().is_err());
        assert!(
            HostSpec::new("h", 1)
                .file("/run/x", "", 0o644)
                .validate()
                .is_err()
        );
        assert!(
            HostSpec::new("h", 1)
                .file("/var/run/x", "", 0o644)
                .validate()
                .is_err()
        );
        assert!(
            HostSpec::new("h", 1)
                .file("/running", "", 0o644)
                .validate()
                .is_ok()
        );
        let both = HostSpec::new("h", 1)
            .enabled("nginx")
            .masked("nginx.service");
        assert!(both.validate().is_err());
    }

    #[test]
    fn unit_suffix_defaults_to_service() {
        assert_eq!(unit_file_name("nginx"), "nginx.service");
        assert_eq!(unit_file_name("apt-daily.timer"), "apt-daily.timer");
        assert_eq!(unit_file_name("php8.2-fpm"), "php8.2-fpm.service");
    }
}
