//! The agent as an operator deploys it, on an nginx, an HAProxy and an Apache host (each
//! a noisy matrix host with its app): the shipped unit byte for byte, its user from the
//! shipped sysusers file, its sandbox. Fails if the agent runs as root, if any evidence
//! source reports `unavailable`, if a listener has no owner, or if a valid proxy config
//! is reported as failing its config test.

use std::time::Duration;

use gw502_tests::lab;
use gw502_tests::matrix::hosts;
use gw502_tests::matrix::{Cell, Condition, Fault, Proxy, Topology, Transport};
use gw502_tests::scenario::LabFleet;
use gw502_tests::scenario::agent::{AGENT_UNIT, AGENT_USER, SHIPPED_UNIT};

#[test]
fn every_source_works_under_the_shipped_unit() {
    let mut base = 1;
    let layouts: Vec<hosts::Layout> = [Proxy::Nginx, Proxy::Haproxy, Proxy::Apache]
        .into_iter()
        .enumerate()
        .map(|(n, proxy)| {
            let cell = Cell {
                fault: Fault::Control,
                proxy,
                transport: Transport::Loopback,
                topology: Topology::Single,
                condition: Condition::Noisy,
            };
            let l = hosts::layout(cell, n, base);
            base += hosts::width(&cell);
            l
        })
        .collect();
    let sites: Vec<_> = layouts.iter().map(|l| l.site.clone()).collect();
    let mut fleet = LabFleet::start(&sites).expect("lab");
    fleet
        .boot(layouts.iter().flat_map(|l| l.hosts.clone()).collect())
        .expect("boot");
    let mut problems = Vec::new();
    for l in &layouts {
        let name = &l.origin;
        fleet
            .wait_reports(name, 3, Duration::from_secs(60))
            .expect("reports");
        let host = fleet.host(name).unwrap();
        let unit = std::fs::read_to_string(
            host.root()
                .join("usr/lib/systemd/system/gw502-agent.service"),
        )
        .unwrap();
        assert_eq!(
            unit, SHIPPED_UNIT,
            "{name}: the unit is not the shipped one"
        );
        let out = host
            .exec(&[
                "sh",
                "-c",
                &format!("stat -c %U /proc/$(systemctl show -p MainPID --value {AGENT_UNIT})"),
            ])
            .unwrap();
        let user = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if user != AGENT_USER {
            problems.push(format!("{name}: the agent runs as {user:?}"));
        }
        let detail = fleet.ctl(&["hosts", "show", name]).unwrap();
        let state = &detail["state"];
        if let Some(u) = state["unavailable"].as_object().filter(|u| !u.is_empty()) {
            problems.push(format!(
                "{name} ({:?}): unavailable sources {u:?}",
                l.cell.proxy
            ));
        }
        let app = state["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["port"] == 8080);
        match app {
            Some(s) if s["unit"] == "app.service" => {}
            other => problems.push(format!("{name}: app listener without its owner: {other:?}")),
        }
        for p in state["proxies"].as_array().into_iter().flatten() {
            if p["config_test_ok"] == false {
                problems.push(format!(
                    "{name}: valid {} config reported failing: {}",
                    p["kind"], p["config_test_output"]
                ));
            }
        }
        if state["journal"].as_array().is_none()
            || state["units"].as_array().is_none_or(|u| u.is_empty())
        {
            problems.push(format!("{name}: no units or journal"));
        }
        if state["probes"].as_array().is_none_or(|p| p.is_empty()) {
            problems.push(format!("{name}: no direct probes"));
        }
    }
    drop(fleet);
    assert!(lab::leftovers().is_empty());
    assert!(
        problems.is_empty(),
        "under the shipped unit:\n{}",
        problems.join("\n")
    );
}
