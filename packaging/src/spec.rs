//! The three packages and what each installs: [`PACKAGES`].
//!
//! The daemons' units, sysusers entries and example configs come byte for byte from
//! `deploy/` (the files the lab runs under), the clap commands from each binary's
//! library. The sysusers file `deploy/gw502.sysusers` names both daemon users; each
//! daemon package ships only its own line (`/usr/lib/sysusers.d/gw502-agent.conf`,
//! `gw502-collector.conf`), because dpkg refuses two packages owning one path and the
//! agent and the collector may share a machine.

/// The shipped units and configs, from `deploy/`.
pub mod deploy {
    /// `deploy/gw502-agent.service`.
    pub const AGENT_UNIT: &str = include_str!("../../deploy/gw502-agent.service");
    /// `deploy/gw502-collector.service`.
    pub const COLLECTOR_UNIT: &str = include_str!("../../deploy/gw502-collector.service");
    /// `deploy/gw502.sysusers`.
    pub const SYSUSERS: &str = include_str!("../../deploy/gw502.sysusers");
    /// `deploy/agent.toml`.
    pub const AGENT_CONFIG: &str = include_str!("../../deploy/agent.toml");
    /// `deploy/collector.toml`.
    pub const COLLECTOR_CONFIG: &str = include_str!("../../deploy/collector.toml");
}

/// A daemon package's service parts.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    /// Unit file name, installed in `/lib/systemd/system/`.
    pub unit: &'static str,
    /// The unit's text.
    pub unit_text: &'static str,
    /// The system user the unit runs as (its line is taken from the sysusers file).
    pub user: &'static str,
    /// Example config file name under `/etc/gw502/` (a conffile, `root:USER 0640`).
    pub config: &'static str,
    /// The example config's text.
    pub config_text: &'static str,
}

/// One binary package.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Package and binary name.
    pub name: &'static str,
    /// Debian section.
    pub section: &'static str,
    /// Man page section: 8 for daemons, 1 for user commands.
    pub man_section: u8,
    /// The one-line synopsis.
    pub summary: &'static str,
    /// The extended description, one paragraph per entry.
    pub description: &'static [&'static str],
    /// The binary's clap command.
    pub command: fn() -> clap::Command,
    /// The service parts, for daemons.
    pub daemon: Option<Daemon>,
}

impl Package {
    /// The sysusers entry this package ships, or `None` for a package without a user.
    pub fn sysusers(&self) -> Option<String> {
        let daemon = self.daemon?;
        let line = deploy::SYSUSERS.lines().find(|line| {
            let mut fields = line.split_whitespace();
            fields.next() == Some("u") && fields.next() == Some(daemon.user)
        })?;
        Some(format!(
            "# systemd-sysusers(8) entry of the {} package (from deploy/gw502.sysusers)\n{line}\n",
            self.name
        ))
    }

    /// Where the sysusers entry goes.
    pub fn sysusers_path(&self) -> String {
        format!("/usr/lib/sysusers.d/{}.conf", self.name)
    }
}

/// The agent, the collector and gw502ctl.
pub const PACKAGES: [Package; 3] = [
    Package {
        name: "gw502-agent",
        section: "net",
        man_section: 8,
        summary: "host agent reporting the evidence behind HTTP 502s",
        description: &[
            "gw502 tells you why a site answers 502 Bad Gateway: which hop made the error, \
             which hop is at fault, the evidence, and the one thing to check next.",
            "The agent runs on every web host. It gathers systemd unit state, listening \
             sockets, journal entries, the proxy config, direct upstream probes, DNS answers \
             and proxy log signals, and reports them to the gw502 collector over mTLS. The \
             unit is enabled on install and starts once /etc/gw502/pki/ca.crt exists.",
        ],
        command: gw502_agent::args::command,
        daemon: Some(Daemon {
            unit: "gw502-agent.service",
            unit_text: deploy::AGENT_UNIT,
            user: "gw502-agent",
            config: "agent.toml",
            config_text: deploy::AGENT_CONFIG,
        }),
    },
    Package {
        name: "gw502-collector",
        section: "net",
        man_section: 8,
        summary: "collector attributing HTTP 502s to a layer and cause",
        description: &[
            "gw502 tells you why a site answers 502 Bad Gateway: which hop made the error, \
             which hop is at fault, the evidence, and the one thing to check next.",
            "The collector stores agent reports (SQLite or PostgreSQL), probes sites from \
             the outside, attributes every 5xx to a layer and cause, keeps incidents and \
             routes them to webhooks and Alertmanager. The unit is enabled on install and \
             starts once /etc/gw502/pki/ca.crt exists.",
        ],
        command: gw502_collector::args::command,
        daemon: Some(Daemon {
            unit: "gw502-collector.service",
            unit_text: deploy::COLLECTOR_UNIT,
            user: "gw502",
            config: "collector.toml",
            config_text: deploy::COLLECTOR_CONFIG,
        }),
    },
    Package {
        name: "gw502ctl",
        section: "admin",
        man_section: 1,
        summary: "operator CLI for the gw502 collector",
        description: &[
            "gw502 tells you why a site answers 502 Bad Gateway: which hop made the error, \
             which hop is at fault, the evidence, and the one thing to check next.",
            "gw502ctl lists incidents, hosts, sites and deliveries, explains a URL (also in \
             words for a customer ticket), creates the fleet CA and issues certificates.",
        ],
        command: gw502ctl::args::command,
        daemon: None,
    },
];

/// The package named `name`.
pub fn package(name: &str) -> Option<&'static Package> {
    PACKAGES.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_daemon_ships_only_its_own_user() {
        let agent = package("gw502-agent").unwrap().sysusers().unwrap();
        assert!(agent.contains("\nu gw502-agent - \"gw502 agent\" /var/lib/gw502-agent\n"));
        assert!(!agent.contains("u gw502 "), "{agent}");
        let collector = package("gw502-collector").unwrap().sysusers().unwrap();
        assert!(collector.contains("\nu gw502 - \"gw502 collector\" /var/lib/gw502\n"));
        assert!(!collector.contains("gw502-agent"), "{collector}");
        assert!(package("gw502ctl").unwrap().sysusers().is_none());
    }

    #[test]
    fn units_run_as_the_user_their_package_creates() {
        for p in PACKAGES.iter() {
            let Some(d) = p.daemon else { continue };
            assert!(
                d.unit_text.contains(&format!("\nUser={}\n", d.user)),
                "{}",
                p.name
            );
            assert!(
                d.unit_text
                    .contains(&format!("--config /etc/gw502/{}", d.config)),
                "{}: the unit reads another config",
                p.name
            );
            assert!(
                d.unit_text
                    .contains(&format!("ExecStart=/usr/bin/{} ", p.name)),
                "{}",
                p.name
            );
        }
    }
}
