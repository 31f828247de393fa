//! Cold start: service units that may be the upstream of a target although
//! the agent never saw them listen.
//!
//! The agent learns units through listeners (the sockets source) and keeps
//! them in its unit memory after they stop. An agent started on a host that
//! is already broken has no such memory: the app is stopped, failed or
//! crash-looping, owns no socket, and would never be reported. So every
//! report also names a bounded set of *candidates* (role `candidate`), in
//! this order:
//!
//! 1. failed units (`ListUnitsFiltered(["failed"])`);
//! 2. units with recent stop, exit or fail events in the journal (most
//!    recent first; learnt by the journal source, so from the second report);
//! 3. enabled service units that are inactive or failed
//!    (`ListUnitFilesByPatterns(["enabled"], ["*.service"])`, listed once a
//!    minute, then their `ActiveState` from `ListUnitsByNames`).
//!
//! Only `.service` units qualify, never a template (`x@.service`), the
//! agent's own unit, a proxy unit (those are watched as proxies), a unit
//! already watched for another reason, or a unit of [`SYSTEM_UNITS`]. At
//! most [`MAX_CANDIDATES`] are kept. After reading their state, a
//! `Type=oneshot` candidate is dropped: a oneshot never serves requests.
//!
//! A candidate is a candidate, not a proof: the collector names one only
//! when evidence ties it to a target (its name, its ExecStart naming the
//! target's port or socket path, its working directory named after the
//! site); see `gw502-attribution`'s `chain` module. The functions here are
//! pure so the rule is tested without a bus; the D-Bus calls in
//! [`super::SystemdSource::discover`] only fetch their inputs.

use std::collections::BTreeMap;

use crate::source::UnitRole;

/// Most candidates reported per report.
pub const MAX_CANDIDATES: usize = 16;

/// Units that are never the upstream of a web site, as name patterns (a
/// trailing `*` matches any rest, `.service` is implied). They are the
/// services every distribution runs, each group with its reason:
pub const SYSTEM_UNITS: &[&str] = &[
    // systemd itself and the bus: journald, logind, resolved, networkd, udevd, ...
    "systemd-*",
    "dbus",
    "dbus-*",
    "dbus-broker",
    // logins and sessions: consoles, per-user managers, policy
    "getty@*",
    "serial-getty@*",
    "console-*",
    "user@*",
    "user-runtime-dir@*",
    "polkit",
    "accounts-daemon",
    "emergency",
    "rescue",
    "plymouth*",
    // remote access
    "ssh",
    "sshd",
    "ssh@*",
    "sshd@*",
    // schedulers and their jobs
    "cron",
    "crond",
    "anacron",
    "atd",
    "apt-*",
    "unattended-upgrades",
    "dnf-*",
    "packagekit",
    "man-db",
    "logrotate",
    "e2scrub*",
    "fstrim",
    // logging, time, network plumbing
    "rsyslog",
    "syslog",
    "auditd",
    "chrony",
    "chronyd",
    "ntp",
    "ntpd",
    "networking",
    "NetworkManager*",
    "wpa_supplicant",
    "ModemManager",
    "ifup@*",
    "firewalld",
    "ufw",
    "netfilter-persistent",
    "apparmor",
    // early boot and storage
    "keyboard-setup",
    "kmod*",
    "lvm2-*",
    "blk-availability",
    "multipathd",
    "mdmonitor",
    "udisks2",
    "smartmontools",
    "irqbalance",
    "setvtrgb",
    "grub-*",
    "cloud-*",
    "snapd*",
    "qemu-guest-agent",
    "open-vm-tools",
];

/// Why a unit became a candidate; the order is the order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    /// systemd lists it as failed.
    Failed,
    /// The journal shows it stopping, exiting or failing recently.
    RecentlyStopped,
    /// Enabled to start at boot, yet inactive or failed now.
    EnabledInactive,
}

/// Whether `name` matches a pattern of [`SYSTEM_UNITS`].
pub fn is_system_unit(name: &str) -> bool {
    let stem = name.strip_suffix(".service").unwrap_or(name);
    SYSTEM_UNITS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => stem.starts_with(prefix),
        None => stem == *p,
    })
}

/// Whether `name` may be a candidate at all (see the module docs), for the
/// agent whose own unit is `own`.
pub fn eligible(name: &str, own: Option<&str>) -> bool {
    name.ends_with(".service")
        && !name.ends_with("@.service")
        && own != Some(name)
        && gw502_proxy::by_unit(name).is_none()
        && !is_system_unit(name)
}

/// The agent's own unit from the text of `/proc/self/cgroup`
/// (`0::/system.slice/gw502-agent.service`), if it runs as a service.
pub fn own_unit(cgroup: &str) -> Option<String> {
    cgroup
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .find(|u| u.ends_with(".service"))
        .map(str::to_string)
}

/// Enabled unit-file paths (`/lib/systemd/system/app.service`) as unit
/// names worth asking about: eligible, not yet watched.
pub fn enabled_names(
    files: &[(String, String)],
    watched: &BTreeMap<String, Vec<UnitRole>>,
    own: Option<&str>,
) -> Vec<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter(|(_, state)| state == "enabled")
        .filter_map(|(path, _)| path.rsplit('/').next())
        .filter(|n| eligible(n, own) && !watched.contains_key(*n))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether an `ActiveState` is down enough for an enabled unit to be a candidate.
pub fn is_inactive(active_state: &str) -> bool {
    matches!(active_state, "inactive" | "failed")
}

/// The candidates, in order of preference, at most [`MAX_CANDIDATES`]:
/// `failed` and `enabled_inactive` are unit names from systemd,
/// `stopped` the journal's recently stopped units, most recent first.
pub fn select(
    failed: &[String],
    stopped: &[String],
    enabled_inactive: &[String],
    watched: &BTreeMap<String, Vec<UnitRole>>,
    own: Option<&str>,
) -> Vec<(String, Why)> {
    let mut out: Vec<(String, Why)> = Vec::new();
    let lists = [
        (failed, Why::Failed),
        (stopped, Why::RecentlyStopped),
        (enabled_inactive, Why::EnabledInactive),
    ];
    for (names, why) in lists {
        for name in names {
            if out.len() >= MAX_CANDIDATES {
                return out;
            }
            let fresh = !watched.contains_key(name) && !out.iter().any(|(n, _)| n == name);
            if fresh && eligible(name, own) {
                out.push((name.clone(), why));
            }
        }
    }
    out
}

/// Whether a candidate stays after its state was read: a `Type=oneshot`
/// service runs a job and exits; it never serves requests.
pub fn keep_after_read(service_type: &str) -> bool {
    service_type != "oneshot"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn system_units_and_templates_are_never_candidates() {
        for unit in [
            "systemd-journald.service",
            "dbus.service",
            "ssh.service",
            "sshd.service",
            "cron.service",
            "getty@tty1.service",
            "user@1000.service",
            "polkit.service",
            "apt-daily.service",
            "e2scrub_reap.service",
            "NetworkManager-wait-online.service",
            "app@.service",
            "app.socket",
            "nginx.service",
            "apache2.service",
            "gw502-agent.service",
        ] {
            assert!(!eligible(unit, Some("gw502-agent.service")), "{unit}");
        }
        for unit in [
            "app.service",
            "shop-api.service",
            "gunicorn@shop.service",
            "php8.2-fpm.service",
            "sshuttle.service",
            "postgresql@15-main.service",
        ] {
            assert!(eligible(unit, Some("gw502-agent.service")), "{unit}");
        }
    }

    #[test]
    fn own_unit_comes_from_the_cgroup_path() {
        assert_eq!(
            own_unit("0::/system.slice/gw502-agent.service\n").as_deref(),
            Some("gw502-agent.service")
        );
        assert_eq!(
            own_unit("0::/user.slice/user-1000.slice/session-3.scope"),
            None
        );
        assert_eq!(own_unit(""), None);
    }

    #[test]
    fn failed_first_then_stopped_then_enabled_without_duplicates() {
        let mut watched = BTreeMap::new();
        watched.insert("nginx.service".to_string(), vec![UnitRole::Proxy]);
        watched.insert("worker.service".to_string(), vec![UnitRole::Listener]);
        let got = select(
            &names(&["app.service", "systemd-networkd.service"]),
            &names(&["shop.service", "app.service", "worker.service"]),
            &names(&["blog.service", "shop.service", "gw502-agent.service"]),
            &watched,
            Some("gw502-agent.service"),
        );
        assert_eq!(
            got,
            vec![
                ("app.service".to_string(), Why::Failed),
                ("shop.service".to_string(), Why::RecentlyStopped),
                ("blog.service".to_string(), Why::EnabledInactive),
            ]
        );
    }

    #[test]
    fn candidates_are_bounded() {
        let many: Vec<String> = (0..40).map(|i| format!("svc{i:02}.service")).collect();
        let got = select(&many, &[], &names(&["app.service"]), &BTreeMap::new(), None);
        assert_eq!(got.len(), MAX_CANDIDATES);
        assert_eq!(got[0].0, "svc00.service");
        assert!(got.iter().all(|(_, why)| *why == Why::Failed));
    }

    #[test]
    fn enabled_files_become_unwatched_eligible_names() {
        let files = [
            ("/lib/systemd/system/app.service", "enabled"),
            ("/etc/systemd/system/shop.service", "enabled"),
            ("/lib/systemd/system/ssh.service", "enabled"),
            ("/lib/systemd/system/getty@.service", "enabled"),
            ("/lib/systemd/system/old.service", "disabled"),
            ("/lib/systemd/system/nginx.service", "enabled"),
        ]
        .map(|(p, s)| (p.to_string(), s.to_string()));
        let mut watched = BTreeMap::new();
        watched.insert("shop.service".to_string(), vec![UnitRole::Upstream]);
        assert_eq!(enabled_names(&files, &watched, None), ["app.service"]);
        assert!(is_inactive("failed") && is_inactive("inactive"));
        assert!(!is_inactive("active") && !is_inactive("activating"));
    }

    #[test]
    fn oneshot_candidates_are_dropped() {
        assert!(!keep_after_read("oneshot"));
        for t in ["simple", "exec", "forking", "notify", ""] {
            assert!(keep_after_read(t), "{t}");
        }
    }
}
