//! What one report's gathering costs, source by source, on the fault matrix's hosts:
//! healthy cells of the seeded sample (the noise of `noisy` hosts included) booted as one
//! lab batch, every agent under the shipped unit with a metrics listener added to its
//! config, and after `WAIT` seconds each agent's `gw502_agent_source_seconds` and
//! `gw502_agent_gather_seconds` read from inside its host. The figures are wall time, so
//! they rise with the lab's load: `CELLS` sets how many cells share the machine (the full
//! matrix runs 12 hosts a batch).
//!
//! Run (root, debug binaries first):
//! `cargo build --workspace --bins && cargo run -p gw502-tests --example gather_cost`
//! Knobs: `CELLS` (default 12), `WAIT` seconds of reports (default 60).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use gw502_tests::matrix::{Cell, Condition, Transport, hosts, sample};
use gw502_tests::scenario::LabFleet;
use gw502_tests::scenario::agent::{AGENT_CONFIG, AGENT_USER};

/// Where the agents serve their metrics, inside each host.
const METRICS: &str = "127.0.0.1:9503";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Summed seconds and runs per source, from one Prometheus text exposition.
fn sums(text: &str) -> BTreeMap<String, (f64, f64)> {
    let mut per: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = key.split_once('{').unwrap_or((key, ""));
        let source = labels
            .split("source=\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        let (metric, source) = match (name, source) {
            (n, Some(s)) if n.starts_with("gw502_agent_source_seconds_") => (n, s),
            (n, None) if n.starts_with("gw502_agent_gather_seconds_") => (n, "(whole report)"),
            _ => continue,
        };
        let entry = per.entry(source.to_owned()).or_default();
        if metric.ends_with("_sum") {
            entry.0 += value;
        } else if metric.ends_with("_count") {
            entry.1 += value;
        }
    }
    per
}

fn main() -> anyhow::Result<()> {
    let cells = knob("CELLS", 12) as usize;
    let wait = Duration::from_secs(knob("WAIT", 60));
    let healthy: Vec<Cell> = sample(11, 400)
        .into_iter()
        .filter(|c| matches!(c.condition, Condition::Warm | Condition::Noisy))
        .filter(|c| c.transport != Transport::Remote)
        .take(cells)
        .collect();
    let layouts = hosts::batch(&healthy);
    let sites: Vec<_> = layouts.iter().map(|l| l.site.clone()).collect();
    let specs: Vec<_> = layouts.iter().flat_map(|l| l.hosts.clone()).collect();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut fleet = LabFleet::deferred(&sites)?;
    fleet.boot_agents(specs, false)?;
    for name in &names {
        let host = fleet.host(name)?;
        let config = host.exec(&["cat", AGENT_CONFIG])?;
        let config = String::from_utf8_lossy(&config.stdout);
        let (head, tls) = config
            .split_once("[tls]")
            .context("the lab agent config has no [tls] table")?;
        let config = format!("{head}metrics_listen = \"{METRICS}\"\n[tls]{tls}");
        host.write_file(Path::new(AGENT_CONFIG), &config, 0o640)?;
        host.exec_ok(&["chgrp", AGENT_USER, AGENT_CONFIG])?;
    }
    fleet.start_collector(&sites)?;
    fleet.start_agents(&names)?;
    for l in &layouts {
        let on: Vec<&str> = l.hosts.iter().map(|h| h.name.as_str()).collect();
        println!("{} on {}", l.cell.id(), on.join(", "));
    }
    std::thread::sleep(wait);
    let load = std::fs::read_to_string("/proc/loadavg")?;
    let mut all: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for name in &names {
        let url = format!("http://{METRICS}/metrics");
        let out = fleet.host(name)?.exec(&["curl", "-sS", &url])?;
        for (source, (sum, count)) in sums(&String::from_utf8_lossy(&out.stdout)) {
            let entry = all.entry(source).or_default();
            entry.0 += sum;
            entry.1 += count;
        }
    }
    println!(
        "\n{} hosts, {} s of reports, load average (1, 5, 15 min) {}",
        names.len(),
        wait.as_secs(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("\n| source | runs | mean ms |\n|---|---|---|");
    for (source, (sum, count)) in &all {
        let mean = if *count > 0.0 {
            sum / count * 1000.0
        } else {
            0.0
        };
        println!("| {source} | {count:.0} | {mean:.0} |");
    }
    Ok(())
}
