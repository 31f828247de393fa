//! Turning a fresh overlay of the machine's `/` into the root of one lab host.
//!
//! The overlay starts as a copy of the machine, which has packages installed and enabled
//! for many purposes (postgresql, nginx, php-fpm, haproxy, alertmanager, apt timers). A
//! host must run only what its [`HostSpec`] enables, so this clears the image's `.wants`
//! links and masks the well-known services, then writes the host's identity (hostname,
//! machine id, `/etc/hosts`), the unit that gives `host0` its address, the spec's files,
//! and the links that enable the spec's units.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};

use super::rootfs;
use super::spec::{HostSpec, unit_file_name};

/// Name of the oneshot unit that configures `lo` and `host0`.
pub const NETWORK_UNIT: &str = "gw502-lab-net.service";

/// Services the image enables (or may enable once installed) that a host runs only when
/// its spec enables them; NTP is masked so no host tries to leave the lab.
const IMAGE_SERVICES: [&str; 11] = [
    "caddy.service",
    "postgresql.service",
    "nginx.service",
    "php8.2-fpm.service",
    "haproxy.service",
    "apache2.service",
    "prometheus-alertmanager.service",
    "prometheus-node-exporter.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
];

/// `.wants` directories whose image links are cleared; the spec's units are linked anew.
const WANTS_DIRS: [&str; 4] = [
    "/etc/systemd/system/multi-user.target.wants",
    "/etc/systemd/system/timers.target.wants",
    "/etc/systemd/system/sysinit.target.wants",
    "/etc/systemd/system/sockets.target.wants",
];

/// Where unit files are looked up inside the host, in systemd's order.
const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Prepare the host root `root` for `spec`.
pub fn prepare(root: &Path, spec: &HostSpec, bridge_ip: Ipv4Addr) -> anyhow::Result<()> {
    write_identity(root, spec, bridge_ip)?;
    quiet_image(root, spec)?;
    let unit = network_unit(spec.ip());
    write(
        root,
        &Path::new("/etc/systemd/system").join(NETWORK_UNIT),
        &unit,
        0o644,
    )?;
    enable(root, NETWORK_UNIT)?;
    for (path, contents, mode) in &spec.files {
        write(root, path, contents, *mode)?;
    }
    for (path, target) in &spec.links {
        let _ = rootfs::remove(root, path);
        rootfs::link(root, path, target)
            .with_context(|| format!("link {} in host {}", path.display(), spec.name))?;
    }
    for unit in &spec.enable {
        enable(root, &unit_file_name(unit))
            .with_context(|| format!("enable {unit} in host {}", spec.name))?;
    }
    for unit in &spec.mask {
        mask(root, &unit_file_name(unit))?;
    }
    Ok(())
}

fn write(root: &Path, path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    rootfs::write_file(root, path, contents, mode)
        .with_context(|| format!("write {} in host root {}", path.display(), root.display()))
}

/// Hostname, a machine id of its own (journald and agents key on it) and `/etc/hosts`.
fn write_identity(root: &Path, spec: &HostSpec, bridge_ip: Ipv4Addr) -> anyhow::Result<()> {
    write(
        root,
        Path::new("/etc/hostname"),
        &format!("{}\n", spec.name),
        0o644,
    )?;
    write(
        root,
        Path::new("/etc/machine-id"),
        &format!("{}\n", machine_id(&spec.name)),
        0o444,
    )?;
    write(
        root,
        Path::new("/etc/hosts"),
        &hosts_file(spec, bridge_ip),
        0o644,
    )
}

/// The `/etc/hosts` of a host: loopback, itself, the lab gateway and the spec's entries.
pub fn hosts_file(spec: &HostSpec, bridge_ip: Ipv4Addr) -> String {
    let mut text = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n{bridge_ip}\tgw502-lab-gateway\n",
        spec.ip(),
        spec.name
    );
    for (name, ip) in &spec.hosts_entries {
        text.push_str(&format!("{ip}\t{name}\n"));
    }
    text
}

/// 32 hex digits, different per host name and per run.
fn machine_id(name: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let half = |salt: u64| {
        let mut hasher = DefaultHasher::new();
        (salt, name, now, std::process::id()).hash(&mut hasher);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

/// The oneshot unit bringing up `lo` and `host0` with the host's address; no default
/// route, so traffic stays in the lab.
pub fn network_unit(ip: Ipv4Addr) -> String {
    format!(
        "[Unit]\n\
         Description=gw502 lab network (host0 {ip}/24)\n\
         DefaultDependencies=no\n\
         Wants=network-pre.target\n\
         Before=network-pre.target network.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart=/usr/sbin/ip link set lo up\n\
         ExecStart=/usr/sbin/ip addr replace {ip}/24 dev host0\n\
         ExecStart=/usr/sbin/ip link set host0 up\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// Drop the image's `.wants` links and mask its services the spec does not enable.
fn quiet_image(root: &Path, spec: &HostSpec) -> anyhow::Result<()> {
    for dir in WANTS_DIRS {
        let Ok(at) = rootfs::resolve_in_root(root, Path::new(dir)) else {
            continue;
        };
        let Ok(entries) = fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let inside = Path::new(dir).join(entry.file_name());
            rootfs::remove(root, &inside)
                .with_context(|| format!("remove {}", inside.display()))?;
        }
    }
    let enabled: Vec<String> = spec.enable.iter().map(|u| unit_file_name(u)).collect();
    for unit in IMAGE_SERVICES
        .iter()
        .filter(|u| !enabled.iter().any(|e| e == *u))
    {
        mask(root, unit)?;
    }
    Ok(())
}

fn mask(root: &Path, unit: &str) -> anyhow::Result<()> {
    let path = Path::new("/etc/systemd/system").join(unit);
    rootfs::link(root, &path, Path::new("/dev/null")).with_context(|| format!("mask {unit}"))
}

/// Link `unit` into the `.wants` directory of the target that fits its type.
fn enable(root: &Path, unit: &str) -> anyhow::Result<()> {
    let Some(file) = unit_file(root, unit) else {
        bail!("no unit file for {unit} under {}", UNIT_DIRS.join(", "));
    };
    let target = if unit.ends_with(".timer") {
        "timers.target"
    } else if unit.ends_with(".socket") {
        "sockets.target"
    } else {
        "multi-user.target"
    };
    let wants = PathBuf::from(format!("/etc/systemd/system/{target}.wants")).join(unit);
    rootfs::link(root, &wants, &file).with_context(|| format!("link {}", wants.display()))
}

/// The unit file for `unit` (templates for instances) as the host sees it; a mask link to
/// `/dev/null` in `/etc` is removed first, since the spec asks for the unit to run.
fn unit_file(root: &Path, unit: &str) -> Option<PathBuf> {
    let etc = Path::new("/etc/systemd/system").join(unit);
    let masked = rootfs::resolve_parent_in_root(root, &etc)
        .and_then(fs::read_link)
        .is_ok_and(|target| target == Path::new("/dev/null"));
    if masked {
        rootfs::remove(root, &etc).ok()?;
    }
    let template = match (unit.find('@'), unit.rfind('.')) {
        (Some(at), Some(dot)) if dot > at + 1 => format!("{}@{}", &unit[..at], &unit[dot..]),
        _ => unit.to_owned(),
    };
    [unit, template.as_str()].into_iter().find_map(|name| {
        UNIT_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|path| rootfs::exists(root, path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_unit_has_address_and_no_route() {
        let unit = network_unit(Ipv4Addr::new(10, 77, 0, 11));
        assert!(unit.contains("ip addr replace 10.77.0.11/24 dev host0"));
        assert!(unit.contains("ip link set lo up"));
        assert!(!unit.contains("route"));
    }

    #[test]
    fn hosts_file_lists_self_and_entries() {
        let spec = HostSpec::new("host2", 2).host_entry("host1", Ipv4Addr::new(10, 77, 0, 11));
        let text = hosts_file(&spec, Ipv4Addr::new(10, 77, 0, 1));
        assert!(text.contains("10.77.0.12\thost2\n"));
        assert!(text.contains("10.77.0.11\thost1\n"));
        assert!(text.contains("10.77.0.1\tgw502-lab-gateway\n"));
    }

    #[test]
    fn prepare_masks_image_services_and_enables_spec_units() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let wants = r.join("etc/systemd/system/multi-user.target.wants");
        fs::create_dir_all(&wants).unwrap();
        fs::create_dir_all(r.join("lib/systemd/system")).unwrap();
        fs::write(r.join("lib/systemd/system/nginx.service"), "[Service]\n").unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/postgresql.service",
            wants.join("postgresql.service"),
        )
        .unwrap();
        let spec = HostSpec::new("host1", 1)
            .file("/etc/systemd/system/app.service", "[Service]\n", 0o644)
            .enabled("nginx")
            .enabled("app")
            .masked("cron");
        prepare(r, &spec, Ipv4Addr::new(10, 77, 0, 1)).unwrap();
        let link = |p: &str| fs::read_link(r.join(p)).unwrap();
        assert_eq!(
            link("etc/systemd/system/postgresql.service"),
            Path::new("/dev/null")
        );
        assert_eq!(
            link("etc/systemd/system/haproxy.service"),
            Path::new("/dev/null")
        );
        assert_eq!(
            link("etc/systemd/system/cron.service"),
            Path::new("/dev/null")
        );
        assert!(!r.join("etc/systemd/system/nginx.service").exists());
        assert!(fs::symlink_metadata(wants.join("postgresql.service")).is_err());
        assert_eq!(
            link("etc/systemd/system/multi-user.target.wants/nginx.service"),
            Path::new("/lib/systemd/system/nginx.service")
        );
        assert_eq!(
            link("etc/systemd/system/multi-user.target.wants/app.service"),
            Path::new("/etc/systemd/system/app.service")
        );
        assert!(wants.join(NETWORK_UNIT).symlink_metadata().is_ok());
        assert_eq!(
            fs::read_to_string(r.join("etc/hostname")).unwrap(),
            "host1\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("etc/machine-id"))
                .unwrap()
                .trim()
                .len(),
            32
        );
        let missing = HostSpec::new("host1", 1).enabled("nope");
        assert!(prepare(r, &missing, Ipv4Addr::new(10, 77, 0, 1)).is_err());
    }
}
