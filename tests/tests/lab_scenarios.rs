//! Lab scenarios: real faults on real systemd hosts (nginx, PHP-FPM, HAProxy and app
//! units, each host with a `gw502-agent` unit), attributed by the real collector on the
//! machine and read back with `gw502ctl --json incidents`.
//!
//! One table-driven test runs the scenarios that the fault matrix does not cover
//! (`cases::matrix_cell` names the matrix cell of each retired one: `lab_matrix` runs
//! those), in order, each on a fresh lab (hosts, collector, PKI), and asserts layer,
//! cause, status and emitted_by of the first incident opened after the fault. It writes
//! the results table (expected and got verdict, seconds from fault to attributed
//! incident) to `docs/LAB_RESULTS.md` when the whole table ran. `GW502_LAB_ONLY=3,7` runs
//! a subset, retired ones included (and leaves the docs alone). The lab
//! needs root, `systemd-nspawn` and the built binaries (`cargo build --workspace --bins`);
//! it never skips.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gw502_tests::lab::{self, fixtures};
use gw502_tests::matrix::cells;
use gw502_tests::scenario::LabFleet;
use gw502_tests::scenario::agent::AGENT_INTERVAL;
use gw502_tests::scenario::cases::{Case, Expect, Then, cases, matrix_cell, verdict};
use gw502_tests::scenario::collector::LAB_WINDOW;
use gw502_tests::scenario::results::{Outcome, markdown};
use gw502_tests::scenario::traffic::{Load, get};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a scenario may take from fault to attributed incident.
const ATTRIBUTION_DEADLINE: Duration = Duration::from_secs(45);
/// How long after attribution a visitor may take to see the error.
const VISIBLE_DEADLINE: Duration = Duration::from_secs(15);
/// How long a fixed fault may take to resolve its incident.
const RESOLVE_DEADLINE: Duration = Duration::from_secs(45);

/// Poll until `path` at `addr` answers 200.
fn wait_healthy(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = get(addr, path, Duration::from_secs(5));
        if matches!(got, Ok(200)) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "{addr}{path} never answered 200: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ids(listing: &[Value]) -> BTreeSet<u64> {
    listing.iter().filter_map(|i| i["id"].as_u64()).collect()
}

/// Run one case on a fresh lab; the outcome, or an error when the lab itself failed.
fn run(case: Case) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        number: case.number,
        fault: case.fault.to_owned(),
        expected: match &case.then {
            Then::Attribute(e) => e.text(),
            Then::Recover(e, _) => format!("{} then resolved", e.text()),
            Then::Quiet => "no incident".to_owned(),
        },
        got: String::new(),
        seconds: None,
        visible: None,
        pass: false,
    };
    let names: Vec<String> = case.hosts.iter().map(|h| h.name.clone()).collect();
    let mut fleet = LabFleet::start(&case.sites)?;
    fleet.boot(case.hosts)?;
    let (addr, healthy, path, visitors) = case.visit;
    let addr: SocketAddr = addr.parse()?;
    wait_healthy(addr, healthy)?;
    for name in &names {
        fleet.wait_reports(name, 2, Duration::from_secs(30))?;
    }
    let before = ids(&fleet.incidents(true)?);
    let fault = Instant::now();
    let fault_at = OffsetDateTime::now_utc();
    (case.inject)(&fleet)?;
    let load = Load::start(addr, path, visitors, Duration::from_millis(250));
    let new = |i: &Value| i["id"].as_u64().is_some_and(|id| !before.contains(&id));
    let diagnose = |listing: &[Value]| {
        eprintln!(
            "scenario {}: incidents:\n{}",
            case.number,
            serde_json::to_string_pretty(listing).unwrap_or_default()
        );
        for name in &names {
            eprintln!("host {name}:\n{}", fleet.host_detail(name));
        }
    };
    match case.then {
        Then::Attribute(ref e) | Then::Recover(ref e, _) => {
            let (found, listing) =
                fleet.wait_incident(ATTRIBUTION_DEADLINE, |i| new(i) && e.matches(i))?;
            let Some(found) = found else {
                let got: Vec<String> = listing.iter().filter(|i| new(i)).map(verdict).collect();
                outcome.got = if got.is_empty() {
                    "no incident".into()
                } else {
                    got.join("; ")
                };
                diagnose(&listing);
                return Ok(outcome);
            };
            outcome.got = verdict(&found);
            outcome.seconds = Some(seconds_to_open(&found, fault_at)?);
            // gw502 may attribute before a visitor sees the error (a 504 waits
            // for the proxy's connect timeout); give the visitors a moment.
            let seen =
                lab::run::poll_until(Instant::now() + VISIBLE_DEADLINE, || load.first_error());
            outcome.visible = seen.map(|at| at.duration_since(fault).as_secs_f64());
            outcome.pass = true;
            if let Then::Recover(_, fix) = case.then {
                fix(&fleet)?;
                let id = found["id"].clone();
                let (resolved, listing) = fleet.wait_incident(RESOLVE_DEADLINE, |i| {
                    i["id"] == id && i["state"] == "resolved"
                })?;
                outcome.pass = resolved.is_some();
                outcome.got = format!(
                    "{} then {}",
                    outcome.got,
                    if outcome.pass {
                        "resolved"
                    } else {
                        "still open"
                    }
                );
                if !outcome.pass {
                    diagnose(&listing);
                }
            }
        }
        Then::Quiet => {
            let end = Instant::now() + LAB_WINDOW;
            let mut opened = Vec::new();
            while Instant::now() < end && opened.is_empty() {
                opened = fleet.incidents(true)?.into_iter().filter(new).collect();
                std::thread::sleep(Duration::from_millis(500));
            }
            outcome.pass = opened.is_empty();
            outcome.got = if opened.is_empty() {
                "no incident".into()
            } else {
                diagnose(&opened);
                opened.iter().map(verdict).collect::<Vec<_>>().join("; ")
            };
        }
    }
    Ok(outcome)
}

#[test]
fn scenarios() {
    let only: Option<BTreeSet<u32>> = std::env::var("GW502_LAB_ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for case in cases() {
        if only.as_ref().is_some_and(|o| !o.contains(&case.number)) {
            continue;
        }
        if let (None, Some(cell)) = (&only, matrix_cell(case.number)) {
            eprintln!(
                "scenario {} ({}): run by the matrix as {cell}",
                case.number, case.fault
            );
            continue;
        }
        let (number, fault) = (case.number, case.fault);
        let scenario_started = Instant::now();
        let outcome = run(case).unwrap_or_else(|error| Outcome {
            number,
            fault: fault.to_owned(),
            expected: String::new(),
            got: format!("lab error: {error:#}"),
            seconds: None,
            visible: None,
            pass: false,
        });
        eprintln!(
            "scenario {number} ({fault}): {} in {:.1}s: got {} after {:?}s",
            if outcome.pass { "pass" } else { "FAIL" },
            scenario_started.elapsed().as_secs_f64(),
            outcome.got,
            outcome.seconds
        );
        outcomes.push(outcome);
    }
    let total = started.elapsed().as_secs_f64();
    let left = lab::leftovers();
    let when = format!("{} UTC", chrono_like_now());
    let table = markdown(&outcomes, total, &when, AGENT_INTERVAL.as_secs_f64());
    println!("{table}");
    if only.is_none() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/LAB_RESULTS.md");
        std::fs::write(&path, &table).expect("write docs/LAB_RESULTS.md");
    }
    assert!(left.is_empty(), "the lab left behind: {left:?}");
    let failed: Vec<u32> = outcomes
        .iter()
        .filter(|o| !o.pass)
        .map(|o| o.number)
        .collect();
    assert!(failed.is_empty(), "scenarios failed: {failed:?}\n{table}");
}

/// Seconds from the fault to when the collector opened incident `i` (its
/// `opened_at`, in milliseconds): exact, where the poll of `gw502ctl` that
/// found it adds up to its interval.
fn seconds_to_open(i: &Value, fault_at: OffsetDateTime) -> anyhow::Result<f64> {
    let opened = i["opened_at"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("incident without opened_at: {i}"))?;
    let opened = OffsetDateTime::parse(opened, &Rfc3339)?;
    Ok((opened - fault_at).as_seconds_f64())
}

/// The current UTC time as `YYYY-MM-DD HH:MM` (from `date`, no time crate needed).
fn chrono_like_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The agent's systemd, sockets and journal sources on a real host: `gw502-agent snapshot
/// --json` inside a lab host with nginx, PHP-FPM and a crash-looping unit (these replace
/// the sources' former `#[ignore]`d live tests, which needed to be run by hand in a host).
#[test]
fn agent_sources_on_a_real_host() {
    use gw502_tests::scenario::agent;
    let crashy = "[Unit]\nDescription=gw502 lab unit that exits at once\nStartLimitIntervalSec=0\n\n\
                  [Service]\nExecStart=/bin/sh -c 'echo crashy starting; exit 3'\n\
                  Restart=always\nRestartSec=200ms\n\n[Install]\nWantedBy=multi-user.target\n";
    let spec = fixtures::php_host("host1", 1, 2)
        .file("/etc/systemd/system/crashy.service", crashy, 0o644)
        .file(
            "/etc/gw502/agent.toml",
            "collector = \"http://127.0.0.1:7502\"\nunits = [\"crashy.service\", \"gw502-no-such-unit.service\"]\n\
             state_dir = \"/var/lib/gw502-agent\"\n[tls]\nplaintext = true\n",
            0o644,
        )
        .enabled("crashy");
    let mut lab = lab::Lab::start().expect("the lab cannot start");
    let host = lab.boot(spec).expect("host does not boot");
    agent::copy_agent(host).unwrap();
    // Each snapshot moves the persisted journal cursor on, so journal events
    // are gathered across every snapshot taken.
    let journal_events = std::cell::RefCell::new(Vec::<Value>::new());
    let snapshot = || -> Value {
        let out = host
            .exec(&[
                agent::AGENT_BIN,
                "-c",
                "/etc/gw502/agent.toml",
                "snapshot",
                "--json",
            ])
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snap: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(events) = snap["journal"]["events"].as_array() {
            journal_events.borrow_mut().extend(events.iter().cloned());
        }
        snap
    };
    let unit = |snap: &Value, name: &str| -> Value {
        snap["systemd"]["units"]
            .as_array()
            .and_then(|units| units.iter().find(|u| u["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no unit {name} in {}", snap["systemd"]))
    };
    let first = snapshot();

    // systemd over D-Bus: states, roles, main pids, missing units, a rising restart counter.
    assert_eq!(first["systemd"]["unavailable"], "");
    let nginx = unit(&first, "nginx.service");
    assert_eq!(nginx["active_state"], "active");
    assert_eq!(nginx["sub_state"], "running");
    assert!(nginx["main_pid"].as_u64().unwrap() > 0);
    assert!(nginx["roles"].as_array().unwrap().contains(&"proxy".into()));
    assert_eq!(unit(&first, "php8.2-fpm.service")["active_state"], "active");
    let missing = unit(&first, "gw502-no-such-unit.service");
    assert_eq!(missing["load_state"], "not-found");
    assert_eq!(missing["roles"], serde_json::json!(["configured"]));
    let restarts = |snap: &Value| unit(snap, "crashy.service")["n_restarts"].as_u64().unwrap();
    // A snapshot may land while the next attempt runs (systemd then resets the
    // main process's exit status), so wait for one between crashes.
    let crashed = |snap: &Value| unit(snap, "crashy.service")["exec_main_status"] == 3;
    let end = Instant::now() + Duration::from_secs(20);
    let mut later = snapshot();
    while (restarts(&later) <= restarts(&first) || !crashed(&later)) && Instant::now() < end {
        later = snapshot();
    }
    assert!(
        restarts(&later) > restarts(&first),
        "NRestarts of crashy.service did not rise: {}",
        unit(&later, "crashy.service")
    );
    assert!(crashed(&later), "{}", unit(&later, "crashy.service"));

    // Listening sockets over netlink sock_diag, each with its owning unit.
    assert_eq!(first["sockets"]["method"], "netlink");
    let listeners = first["sockets"]["listeners"].as_array().unwrap();
    let http = listeners
        .iter()
        .find(|l| l["family"] == "tcp4" && l["port"] == 80)
        .expect("nginx listens on :80");
    assert_eq!(http["unit"], "nginx.service");
    assert_eq!(http["process"], "nginx");
    assert_eq!(http["backlog"], 511);
    let fpm = listeners
        .iter()
        .find(|l| l["address"] == fixtures::FPM_SOCKET)
        .expect("php-fpm listens on its socket");
    assert_eq!(fpm["unit"], "php8.2-fpm.service");
    assert_eq!(fpm["mode"], 0o660);
    assert!(fpm["backlog"].as_u64().unwrap() > 0);

    // The journal: lifecycle events of watched units (exits, automatic restarts) and a
    // restart done by hand, seen by a later snapshot.
    let events = |snap: &Value| -> Vec<Value> {
        snap["journal"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let crashy: Vec<Value> = journal_events
        .borrow()
        .iter()
        .filter(|e| e["unit"] == "crashy.service")
        .cloned()
        .collect();
    assert!(
        crashy
            .iter()
            .any(|e| e["kind"] == "exit" && e["detail"] == "code=exited status=3"),
        "{crashy:?}"
    );
    assert!(
        crashy
            .iter()
            .any(|e| e["kind"] == "restart"
                && e["detail"].as_str().unwrap().contains("restart counter")),
        "{crashy:?}"
    );
    host.systemctl(&["restart", "php8.2-fpm"]).unwrap();
    let restarted = |snap: &Value| {
        events(snap)
            .iter()
            .any(|e| e["unit"] == "php8.2-fpm.service" && e["kind"] == "restart")
    };
    let end = Instant::now() + Duration::from_secs(20);
    let mut after = snapshot();
    while !restarted(&after) && Instant::now() < end {
        after = snapshot();
    }
    assert!(restarted(&after), "no restart event: {:?}", events(&after));
    drop(lab);
    let left = lab::leftovers();
    assert!(left.is_empty(), "the lab left behind: {left:?}");
}

/// The fleet of `deploy/demo.sh`: one broken host out of three is attributed within a
/// minute of starting, and the healthy ones get no incident. With `GW502_DEMO_HOLD=1`
/// (what demo.sh sets) the fleet then stays up for the newcomer to query.
#[test]
fn demo_fleet_attributes_the_broken_host() {
    use gw502_tests::scenario::demo;
    let started = Instant::now();
    let fleet = demo::start().expect("the demo fleet does not start");
    let (found, listing) = fleet
        .wait_incident(Duration::from_secs(60), |i| {
            i["site"] == "web2" && i["cause"] == "wrong_port"
        })
        .unwrap();
    let took = started.elapsed();
    let found = found.unwrap_or_else(|| panic!("no wrong_port incident for web2: {listing:#?}"));
    println!(
        "web2 attributed {} {} seconds after the demo started",
        verdict(&found),
        took.as_secs()
    );
    assert_eq!(found["layer"], "handoff");
    assert_eq!(found["host"], "web2");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // A probe may catch a host while its units still start (a real, short 502); such an
    // incident resolves within a few good probes. What stays open is web2's fault alone.
    let end = Instant::now() + Duration::from_secs(30);
    let mut others: Vec<Value>;
    loop {
        let open = fleet.incidents(false).unwrap();
        others = open.into_iter().filter(|i| i["site"] != "web2").collect();
        if others.is_empty() || Instant::now() >= end {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        others.is_empty(),
        "healthy hosts keep incidents open: {others:#?}"
    );
    if std::env::var_os("GW502_DEMO_HOLD").is_some() {
        demo::hold(&fleet);
    }
    drop(fleet);
    let left = lab::leftovers();
    assert!(left.is_empty(), "the lab left behind: {left:?}");
}

/// Runs without the lab: each scenario left to the matrix names a runnable cell that
/// expects the scenario's verdict (here, not in `cases.rs`, so the library's scenario
/// module does not import the matrix that imports it).
#[test]
fn every_retired_scenario_is_a_runnable_matrix_cell_with_its_verdict() {
    let mut kept = Vec::new();
    for case in cases() {
        let Some(id) = matrix_cell(case.number) else {
            kept.push(case.number);
            continue;
        };
        let cell = cells()
            .into_iter()
            .find(|c| c.id() == id)
            .unwrap_or_else(|| panic!("no matrix cell {id}"));
        assert_eq!(cell.skip(), None, "{id}");
        assert_eq!(
            cell.expected().map(|e| e.text()),
            case.then.expected().map(Expect::text),
            "scenario {} and {id}",
            case.number
        );
    }
    assert_eq!(kept, [14]);
}
