//! Agent footprint on a synthetic host with real systemd: a lab host (nspawn,
//! its own systemd, D-Bus, journald and network namespace) running 50 units,
//! with 1,000 listeners and 50,000 established connections made inside it by
//! `bench/hold_sockets.py`; `bench/agent_footprint.py` then measures
//! `gw502-agent` next to `ss -tlnp` and one scrape of Prometheus node_exporter
//! with its systemd collector (Debian `prometheus-node-exporter`) there, the
//! agent watching all 50 units.
//!
//! Run (root, release binaries first):
//! `cargo build --release -p gw502-agent -p gw502-collector && cargo run -p gw502-tests --example lab_footprint`
//! Knobs passed through: `ROUNDS` (default 5), `STEADY` seconds (default 60).

use std::path::Path;
use std::time::Duration;

use gw502_tests::lab::{self, HostSpec};

const UNITS: usize = 50;

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let units: Vec<String> = (1..=UNITS)
        .map(|i| format!("footprint-{i:02}.service"))
        .collect();
    let mut spec = HostSpec::new("footprint", 1);
    for unit in &units {
        let body = format!(
            "[Unit]\nDescription=footprint filler {unit}\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"
        );
        spec = spec
            .file(format!("/etc/systemd/system/{unit}"), body, 0o644)
            .enabled(unit.trim_end_matches(".service"));
    }
    let mut lab = lab::Lab::start()?;
    let host = lab.boot(spec)?;
    // Fresh copies: the overlay may cache an older lower-layer binary.
    for (from, to) in [
        ("target/release/gw502-agent", "opt/gw502/gw502-agent"),
        (
            "target/release/gw502-collector",
            "opt/gw502/gw502-collector",
        ),
        ("bench/agent_footprint.py", "opt/bench/agent_footprint.py"),
        ("bench/hold_sockets.py", "opt/bench/hold_sockets.py"),
    ] {
        let dest = host.root().join(to);
        std::fs::create_dir_all(dest.parent().expect("has a parent"))?;
        let _ = std::fs::remove_file(&dest);
        std::fs::copy(repo.join(from), &dest)?;
    }
    let running = host.exec(&[
        "systemctl",
        "list-units",
        "--state=running",
        "--no-legend",
        "footprint-*",
    ])?;
    let count = String::from_utf8_lossy(&running.stdout).lines().count();
    anyhow::ensure!(count == UNITS, "{count} of {UNITS} filler units running");
    let rounds = format!(
        "ROUNDS={}",
        std::env::var("ROUNDS").unwrap_or_else(|_| "5".into())
    );
    let steady = format!(
        "STEADY={}",
        std::env::var("STEADY").unwrap_or_else(|_| "60".into())
    );
    let watch = format!("UNITS={}", units.join(","));
    let out = host.exec_within(
        &[
            "env",
            "GW502_TARGET=/opt/gw502",
            "NODE_EXPORTER=/usr/bin/prometheus-node-exporter",
            &rounds,
            &steady,
            &watch,
            "python3",
            "/opt/bench/agent_footprint.py",
        ],
        Duration::from_secs(900),
    )?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!(
        "\nhost: lab nspawn host with systemd, {count} filler units running and watched by the agent"
    );
    anyhow::ensure!(out.status.success(), "footprint run failed");
    Ok(())
}
