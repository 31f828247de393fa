//! The agent package on a fresh host, the way the README's "Packages" section tells a
//! new user: `dpkg -i` the `.deb` built by `gw502-packaging`, get the host's
//! certificate from `gw502ctl pki`, copy it in, edit `/etc/gw502/agent.toml`, and
//! `systemctl enable --now gw502-agent`; then the host's reports arrive at the lab
//! collector over real mTLS.
//!
//! The lab host's root is an overlay of the machine's `/`, which also holds the
//! workspace's own binaries; the test checks that what runs is the package's file:
//! the unit's main process executes `/usr/bin/gw502-agent`, dpkg owns it and
//! `dpkg --verify` finds it unchanged. It also checks what happens before the
//! certificates exist (enabled, not started, skipped by its condition), that the
//! daemon's journal lines carry no ANSI colour, and that `dpkg -r` stops the unit and
//! `dpkg --purge` cleans up.

use std::path::Path;
use std::time::Duration;

use gw502_packaging::deb::{self, BuildOptions};
use gw502_packaging::spec;
use gw502_tests::lab::{self, Host, HostSpec};
use gw502_tests::scenario::LabFleet;
use gw502_tests::scenario::agent::{AGENT_UNIT, AGENT_USER, workspace_bin};

/// The fresh host's name (its kernel host name, so the agent's default `host_id`).
const HOST: &str = "pkg1";
/// Where the package is copied inside the host.
const DEB_INSIDE: &str = "/var/tmp/gw502-agent.deb";
/// dpkg runs the man-db trigger; give it more than the default exec bound.
const DPKG_TIMEOUT: Duration = Duration::from_secs(180);

fn stdout(host: &Host, args: &[&str]) -> String {
    let out = host.exec(args).expect("exec in host");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn dpkg(host: &Host, args: &[&str]) {
    let mut full = vec!["dpkg"];
    full.extend_from_slice(args);
    let out = host.exec_within(&full, DPKG_TIMEOUT).expect("dpkg runs");
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dpkg_i_then_the_readme_steps_give_a_reporting_agent() {
    // Build the agent package from this build's binary (the test checks packaging, not
    // optimisation; `cargo run -p gw502-packaging -- deb` packages target/release).
    let agent_bin = workspace_bin("gw502-agent").expect("agent built");
    let out = tempfile::tempdir().unwrap();
    let package = spec::package("gw502-agent").unwrap();
    let deb_path = deb::build(
        package,
        &BuildOptions {
            bin_dir: agent_bin.parent().unwrap().to_owned(),
            out_dir: out.path().to_owned(),
            version: env!("CARGO_PKG_VERSION").into(),
            maintainer: deb::MAINTAINER.into(),
        },
    )
    .expect("build the agent package");

    let mut fleet = LabFleet::start(&[]).expect("lab");
    fleet
        .boot_bare(vec![HostSpec::new(HOST, 1)])
        .expect("boot a fresh host");
    let host = fleet.host(HOST).unwrap();
    // The machine blocks service starts in its containers (policy-rc.d); a real host
    // has no such file, and the package's scripts must work without it.
    host.exec_ok(&["rm", "-f", "/usr/sbin/policy-rc.d"])
        .unwrap();
    assert_eq!(
        stdout(host, &["sh", "-c", "command -v gw502-agent || true"]),
        ""
    );
    std::fs::copy(
        &deb_path,
        host.root().join(DEB_INSIDE.trim_start_matches('/')),
    )
    .unwrap();

    // README: dpkg -i.
    dpkg(host, &["-i", DEB_INSIDE]);
    assert_eq!(
        stdout(host, &["systemctl", "is-enabled", AGENT_UNIT]),
        "enabled"
    );
    assert_eq!(
        stdout(host, &["systemctl", "is-active", AGENT_UNIT]),
        "inactive"
    );
    assert!(stdout(host, &["getent", "passwd", AGENT_USER]).starts_with("gw502-agent:"));
    assert_eq!(
        stdout(host, &["stat", "-c", "%U:%G %a", "/etc/gw502/agent.toml"]),
        "root:gw502-agent 640"
    );
    assert!(
        stdout(
            host,
            &["dpkg-query", "-W", "-f", "${Conffiles}", "gw502-agent"]
        )
        .contains("/etc/gw502/agent.toml")
    );
    // Before the certificates exist the unit is skipped, not crash-looping.
    host.systemctl(&["start", AGENT_UNIT]).unwrap();
    assert_eq!(
        stdout(
            host,
            &[
                "systemctl",
                "show",
                "-p",
                "ConditionResult",
                "--value",
                AGENT_UNIT
            ]
        ),
        "no"
    );
    assert_eq!(
        stdout(host, &["systemctl", "is-active", AGENT_UNIT]),
        "inactive"
    );

    // README: certificates from gw502ctl pki, on the machine holding the CA.
    let ctl = workspace_bin("gw502ctl").unwrap();
    let pki_dir = fleet.pki().dir();
    let issued = std::process::Command::new(&ctl)
        .args(["pki", "issue", "agent", HOST, "--dir"])
        .arg(&pki_dir)
        .output()
        .unwrap();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    // README: copy ca.crt and agents/HOST.{crt,key} to the same paths under /etc/gw502/pki.
    for file in [
        "ca.crt".to_owned(),
        format!("agents/{HOST}.crt"),
        format!("agents/{HOST}.key"),
    ] {
        let text = std::fs::read_to_string(pki_dir.join(&file)).unwrap();
        let mode = if file.ends_with(".key") { 0o600 } else { 0o644 };
        host.write_file(&Path::new("/etc/gw502/pki").join(&file), &text, mode)
            .unwrap();
    }
    let key = format!("/etc/gw502/pki/agents/{HOST}.key");
    host.exec_all(&[&["chgrp", AGENT_USER, &key], &["chmod", "0640", &key]])
        .unwrap();
    // README: edit /etc/gw502/agent.toml, the collector and this host's files.
    let config_path = host.root().join("etc/gw502/agent.toml");
    let shipped = std::fs::read_to_string(&config_path).unwrap();
    let edited = readme_edit(&shipped, &format!("https://{}", fleet.collector_addr()));
    assert_ne!(edited, shipped);
    std::fs::write(&config_path, edited).unwrap();
    let check = stdout(host, &["gw502-agent", "check-config"]);
    assert_eq!(check, "/etc/gw502/agent.toml: ok");

    // README: enable and start.
    host.systemctl(&["enable", "--now", AGENT_UNIT]).unwrap();
    fleet
        .wait_reports(HOST, 2, Duration::from_secs(60))
        .expect("the packaged agent reports");

    // What runs is the package's binary, unchanged, under the package's user.
    let pid = stdout(
        host,
        &["systemctl", "show", "-p", "MainPID", "--value", AGENT_UNIT],
    );
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "MainPID {pid:?}");
    let proc_dir = format!("/proc/{pid}");
    assert_eq!(
        stdout(host, &["readlink", &format!("{proc_dir}/exe")]),
        "/usr/bin/gw502-agent"
    );
    assert_eq!(stdout(host, &["stat", "-c", "%U", &proc_dir]), AGENT_USER);
    assert_eq!(
        stdout(host, &["dpkg-query", "-S", "/usr/bin/gw502-agent"]),
        "gw502-agent: /usr/bin/gw502-agent"
    );
    let verify = stdout(host, &["dpkg", "--verify", "gw502-agent"]);
    for line in verify.lines() {
        assert!(
            line.ends_with(" c /etc/gw502/agent.toml"),
            "only the edited conffile may differ from the package: {verify}"
        );
    }

    // Logs that fit their sink: the journal gets plain text, no colour codes.
    let journal = stdout(
        host,
        &[
            "journalctl",
            "--no-pager",
            "-o",
            "json",
            "-u",
            AGENT_UNIT,
            &format!("_PID={pid}"),
        ],
    );
    let messages: Vec<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|entry| match &entry["MESSAGE"] {
            serde_json::Value::String(text) => text.clone(),
            other => panic!("binary journal message (control bytes?): {other}"),
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("agent starting")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().all(|m| !m.contains('\u{1b}')),
        "ANSI colour in the journal: {messages:#?}"
    );

    // dpkg -r stops the unit and removes the binary; the edited config stays.
    dpkg(host, &["-r", "gw502-agent"]);
    assert_eq!(
        stdout(host, &["systemctl", "is-active", AGENT_UNIT]),
        "inactive"
    );
    assert!(!host.root().join("usr/bin/gw502-agent").exists());
    assert!(config_path.exists(), "a removed package keeps its conffile");
    dpkg(host, &["--purge", "gw502-agent"]);
    assert!(!config_path.exists(), "purge removes the conffile");
    assert_eq!(
        stdout(
            host,
            &[
                "sh",
                "-c",
                "dpkg-statoverride --list /etc/gw502/agent.toml || true"
            ]
        ),
        ""
    );

    drop(fleet);
    assert!(lab::leftovers().is_empty());
}

/// The README's config edit: the example collectors become the real collector, and the
/// example host name `web1` in the certificate paths becomes this host's.
fn readme_edit(shipped: &str, collector: &str) -> String {
    let mut out = String::new();
    let mut in_collectors = false;
    for line in shipped.lines() {
        if line.starts_with("collectors = [") {
            in_collectors = true;
            out.push_str(&format!("collector = \"{collector}\"\n"));
            continue;
        }
        if in_collectors {
            in_collectors = line.trim() != "]";
            continue;
        }
        out.push_str(&line.replace("agents/web1.", &format!("agents/{HOST}.")));
        out.push('\n');
    }
    out
}
