//! Runs matrix cells on the lab in batches and judges them strictly.
//!
//! A batch boots the hosts of several cells side by side (each cell has its own hosts
//! and site) under one collector, waits until every site answers 200, injects every
//! fault at once and starts visitors per site. Warm batches start agents and collector
//! before the fault; cold batches start them after it. A cell passes only when the
//! expected incident is open and no other incident is open for its site, boot-time ones
//! included, and (warm) the incident opened after the fault: one that was open while the
//! site was still healthy and later took the right verdict is a false incident, not a
//! right one. A control passes only when no incident at all opened for its site. When a
//! cell is judged, the evidence the engine saw is recorded for the replay corpus.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::scenario::LabFleet;
use crate::scenario::cases::verdict;
use crate::scenario::traffic::{Load, get_as};

use super::hosts::{self, Layout};
use super::proxies;
use super::replay::{Recorded, Recorder, expectation};
use super::{Cell, Condition};

/// Hosts booted side by side in one batch.
pub const BATCH_HOSTS: u8 = 8;
/// From the fault (warm) or the agents' start (cold) to the last look.
pub const DEADLINE: Duration = Duration::from_secs(50);
/// How long before the fault a warm cell's right incident may open and still count as
/// opened on it (evaluation passes and probes are stamped when they start).
pub const OPEN_SLACK: f64 = 1.0;
/// Live reports from every host before a warm cell's fault. What the collector learns
/// from a healthy site, which unit on another host served a proxy's target (its
/// `served_units` memory), it learns in evaluation passes; two reports (about 4 s at
/// the lab's 2 s interval) were not always enough for that under a 12-host batch, and
/// four `wrong_target.*.remote` warm cells came out `insufficient_evidence`, as a cold
/// start would. Four give the 8 s the agents' slower reports gave before ec1a57b.
const LIVE_REPORTS: u64 = 4;

/// The pause between two looks at the incidents: `from_shown` errs long by up to this
/// and one `gw502ctl incidents`.
const POLL: Duration = Duration::from_millis(400);

/// How long a batch waits, once judged, for the visitors of a passing cell to see their
/// first failure: two of the lab proxies' read timeouts.
const SHOWN_WAIT: Duration = Duration::from_secs(2 * proxies::READ_TIMEOUT_SECS);

/// How long a healthy control is watched.
pub const CONTROL_WINDOW: Duration = Duration::from_secs(30);

/// One cell's outcome.
#[derive(Debug, Clone)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// `layer / cause / status / emitted_by`, or `no incident`.
    pub expected: String,
    /// Incidents of the site at judgement (open ones, and for controls every one).
    pub got: String,
    /// Strict pass.
    pub pass: bool,
    /// Whether an incident with the expected layer was open (for the layer rate).
    pub layer_ok: bool,
    /// Seconds from the fault (warm) or the agents' start (cold) to the right verdict.
    pub seconds: Option<f64>,
    /// Seconds from when the fault showed to when the right verdict could be read, on a
    /// passing cell: what gw502 adds to the time a fault takes to show (a read timeout
    /// fails its first request only when the proxy gives up waiting). It showed when a
    /// visitor's request first came back failed, and on a cold start no earlier than the
    /// first report of the site's agents; the verdict could be read by the end of the
    /// `gw502ctl incidents` that first listed it (polled, so this errs long). Below zero
    /// when gw502's own probes saw the fault before the lab's visitors did. `seconds`
    /// instead ends at `opened_at`, the start of the evaluation pass that opened the
    /// incident, which for a slow probe is seconds before the verdict was readable.
    pub from_shown: Option<f64>,
    /// Incidents on a healthy control.
    pub false_incidents: usize,
}

/// Hosts per batch: [`BATCH_HOSTS`], or `GW502_MATRIX_HOSTS` when set (a bigger lab
/// for a faster full run on a machine that has the room).
pub fn batch_hosts() -> u8 {
    std::env::var("GW502_MATRIX_HOSTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &u8| (4..=60).contains(n))
        .unwrap_or(BATCH_HOSTS)
}

/// Split `cells` into batches: cold cells apart from the others, each batch at most
/// [`batch_hosts`] hosts.
pub fn batches(cells: &[Cell]) -> Vec<(bool, Vec<Cell>)> {
    let limit = batch_hosts();
    let mut out: Vec<(bool, Vec<Cell>)> = Vec::new();
    for cold in [false, true] {
        let mut batch = Vec::new();
        let mut used = 0;
        for cell in cells
            .iter()
            .filter(|c| (c.condition == Condition::Cold) == cold)
        {
            let w = hosts::width(cell);
            if used + w > limit && !batch.is_empty() {
                out.push((cold, std::mem::take(&mut batch)));
                used = 0;
            }
            batch.push(*cell);
            used += w;
        }
        if !batch.is_empty() {
            out.push((cold, batch));
        }
    }
    out
}

/// Run one batch; `record` is where replay fixtures go.
pub fn run_batch(
    cold: bool,
    cells: &[Cell],
    record: Option<&Path>,
) -> anyhow::Result<Vec<CellResult>> {
    let layouts = hosts::batch(cells);
    let sites: Vec<_> = layouts.iter().map(|l| l.site.clone()).collect();
    let specs: Vec<_> = layouts.iter().flat_map(|l| l.hosts.clone()).collect();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut fleet = LabFleet::deferred(&sites)?;
    fleet.boot_agents(specs, !cold)?;
    for l in &layouts {
        wait_healthy(l)?;
    }
    if !cold {
        // The collector starts watching once the sites are up (agents spool meanwhile),
        // as it would for sites that already run.
        fleet.start_collector(&sites)?;
        let spooled = names.iter().map(|n| (n.clone(), 2)).collect();
        wait_reports(&fleet, &spooled)?;
        // Reports the agents spooled arrive at once; the ones after them are sent
        // live, so the collector has watched every site healthy before the fault.
        let counts = report_counts(&fleet)?;
        let live = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    counts.get(n).copied().unwrap_or(0) + LIVE_REPORTS,
                )
            })
            .collect();
        wait_reports(&fleet, &live)?;
    }
    let injected = (OffsetDateTime::now_utc(), Instant::now());
    // Each cell's fault counts from its own injection, not the batch's first.
    let mut fault_at = Vec::with_capacity(layouts.len());
    for l in &layouts {
        fault_at.push(OffsetDateTime::now_utc());
        hosts::inject(&fleet, l)?;
    }
    let loads: Vec<Load> = layouts
        .iter()
        .map(|l| {
            Load::start_as(
                l.visit,
                &l.host_header,
                "/",
                l.visitors,
                Duration::from_millis(250),
            )
        })
        .collect();
    if cold {
        // The fault is there before anything of gw502 runs.
        std::thread::sleep(Duration::from_secs(3));
        fleet.start_collector(&sites)?;
        fleet.start_agents(&names)?;
        fault_at.fill(OffsetDateTime::now_utc());
    }
    let started = Instant::now();
    let recorder = match record {
        Some(_) => Some(
            fleet
                .runtime()
                .block_on(Recorder::open(&fleet.pki().config_path()))?,
        ),
        None => None,
    };
    let mut results: BTreeMap<usize, CellResult> = BTreeMap::new();
    // When each passing cell's verdict was first listed, by cell.
    let mut listed: BTreeMap<usize, OffsetDateTime> = BTreeMap::new();
    // `GW502_MATRIX_TRACE=1`: every change of a cell's open incidents, with the seconds
    // since gw502 could first see the fault (the fault, or the agents' start).
    let trace = std::env::var_os("GW502_MATRIX_TRACE").is_some();
    let mut traced: BTreeMap<usize, String> = BTreeMap::new();
    loop {
        let listing = fleet.incidents(true)?;
        // The incidents in `listing` were visible by now at the latest.
        let seen = OffsetDateTime::now_utc();
        let elapsed = started.elapsed();
        for (n, l) in layouts.iter().enumerate() {
            if results.contains_key(&n) {
                continue;
            }
            let of_site: Vec<&Value> = listing
                .iter()
                .filter(|i| i["site"] == l.site.name.as_str())
                .collect();
            let open: Vec<&Value> = of_site
                .iter()
                .copied()
                .filter(|i| i["state"] != "resolved")
                .collect();
            if trace {
                let mut now = listing_text(&open);
                for i in &open {
                    if let Some(m) = i["missing"].as_array().filter(|m| !m.is_empty()) {
                        now.push_str(&format!(" missing {m:?}"));
                    }
                }
                if traced.get(&n) != Some(&now) {
                    eprintln!(
                        "trace {} +{:.1}s: {now}",
                        l.cell.id(),
                        (seen - fault_at[n]).as_seconds_f64()
                    );
                    traced.insert(n, now);
                }
            }
            let judged = match l.cell.expected() {
                None => {
                    if !of_site.is_empty() || elapsed >= CONTROL_WINDOW {
                        let mut got = listing_text(&of_site);
                        if !of_site.is_empty() {
                            got.push_str(&format!(", visitors saw {}", loads[n].failed_statuses()));
                        }
                        Some(CellResult {
                            cell: l.cell,
                            expected: "no incident".into(),
                            got,
                            pass: of_site.is_empty(),
                            layer_ok: of_site.is_empty(),
                            seconds: None,
                            from_shown: None,
                            false_incidents: of_site.len(),
                        })
                    } else {
                        None
                    }
                }
                Some(e) => {
                    let right = open.iter().find(|i| e.matches(i));
                    let seconds = right.and_then(|i| seconds_to_open(i, fault_at[n]));
                    // Cold cells start gw502 after the fault: only a warm cell had a
                    // healthy period for a false incident to open in. An incident
                    // opens at the start of the evaluation pass that sees the fault,
                    // and a probe is stamped when it starts, so one that opens within
                    // [`OPEN_SLACK`] of the fault opened on it.
                    let before_fault = !cold && seconds.is_some_and(|s| s < -OPEN_SLACK);
                    let foreign = right.and_then(|i| {
                        let text = i.to_string();
                        hosts::outside_chain(&l.cell)
                            .into_iter()
                            .find(|u| text.contains(u))
                    });
                    let pass =
                        right.is_some() && open.len() == 1 && !before_fault && foreign.is_none();
                    if pass || elapsed >= DEADLINE {
                        let mut got = listing_text(&open);
                        if let Some(unit) = foreign {
                            got.push_str(&format!(", naming {unit} outside the chain"));
                        }
                        if before_fault {
                            got.push_str(&format!(
                                ", opened {:.0} s before the fault",
                                -seconds.unwrap_or_default()
                            ));
                        }
                        if !pass {
                            // What its visitors saw, beside the status the verdict says.
                            got.push_str(&format!(", visitors saw {}", loads[n].failed_statuses()));
                        }
                        Some(CellResult {
                            cell: l.cell,
                            expected: e.text(),
                            got,
                            pass,
                            layer_ok: open.iter().any(|i| i["layer"] == e.layer),
                            seconds: seconds.filter(|_| !before_fault),
                            from_shown: None,
                            false_incidents: 0,
                        })
                    } else {
                        None
                    }
                }
            };
            if let Some(result) = judged {
                if let (Some(dir), Some(recorder)) = (record, &recorder) {
                    let evidence = fleet.runtime().block_on(recorder.evidence(&l.site.name))?;
                    let mut rec = Recorded {
                        cell: l.cell.id(),
                        expected: expectation(&l.cell),
                        passed: false,
                        evidence,
                    };
                    // A passing cell's fixture holds only when the engine gives the same
                    // verdict on the recorded evidence.
                    rec.passed = result.pass && rec.judge(&rec.replay(), true);
                    rec.write(dir)?;
                }
                eprintln!(
                    "matrix {}: {} (expected {}, got {}{})",
                    l.cell.id(),
                    if result.pass { "pass" } else { "FAIL" },
                    result.expected,
                    result.got,
                    result
                        .seconds
                        .map_or(String::new(), |s| format!(", {s:.1}s"))
                );
                if !result.pass {
                    for name in l.hosts.iter().map(|h| &h.name) {
                        eprintln!("host {name}:\n{}", fleet.host_detail(name));
                    }
                }
                if result.pass && result.seconds.is_some() {
                    listed.insert(n, seen);
                }
                results.insert(n, result);
            }
        }
        if results.len() == layouts.len() {
            break;
        }
        std::thread::sleep(POLL);
    }
    // A verdict can be listed before any visitor saw the fault: a read timeout fails
    // visitors only when the proxy gives up, while gw502's own probe may have been in
    // flight since before the fault. Their first failure is still to come then.
    let until = Instant::now() + SHOWN_WAIT;
    while listed.keys().any(|n| loads[*n].first_error().is_none()) && Instant::now() < until {
        std::thread::sleep(POLL);
    }
    let first_reports = if cold {
        first_reports(&fleet)?
    } else {
        BTreeMap::new()
    };
    for (n, seen) in listed {
        let shown = shown_at(&layouts[n], &loads[n], injected, &first_reports);
        if let (Some(result), Some(at)) = (results.get_mut(&n), shown) {
            result.from_shown = Some((seen - at).as_seconds_f64());
        }
    }
    Ok(results.into_values().collect())
}

/// One field of every host the collector knows (one `gw502ctl hosts`), by host; hosts
/// without it are left out.
fn per_host<T>(
    fleet: &LabFleet,
    field: impl Fn(&Value) -> Option<T>,
) -> anyhow::Result<BTreeMap<String, T>> {
    let hosts = fleet.ctl(&["hosts"])?;
    Ok(hosts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| Some((h["host"].as_str()?.to_owned(), field(h)?)))
        .collect())
}

/// How many reports the collector holds from each host.
fn report_counts(fleet: &LabFleet) -> anyhow::Result<BTreeMap<String, u64>> {
    per_host(fleet, |h| h["reports"].as_u64())
}

/// When each host's agent first reported.
fn first_reports(fleet: &LabFleet) -> anyhow::Result<BTreeMap<String, OffsetDateTime>> {
    per_host(fleet, |h| {
        OffsetDateTime::parse(h["first_seen"].as_str()?, &Rfc3339).ok()
    })
}

/// When cell `l`'s fault showed: the first failed request of its visitors (`load`,
/// started at `injected`), and no earlier than the first report of any of its hosts in
/// `first_reports` (a cold start's; empty on a warm one). `None` when no visitor request
/// failed, or no host of a cold cell reported.
fn shown_at(
    l: &Layout,
    load: &Load,
    injected: (OffsetDateTime, Instant),
    first_reports: &BTreeMap<String, OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let failed = injected.0 + (load.first_error()? - injected.1);
    if first_reports.is_empty() {
        return Some(failed);
    }
    let reported = l
        .hosts
        .iter()
        .filter_map(|h| first_reports.get(&h.name))
        .min()?;
    Some(failed.max(*reported))
}

/// Polls until every host of `wanted` has sent at least its number of reports: all
/// hosts at once, as their agents report side by side.
fn wait_reports(fleet: &LabFleet, wanted: &BTreeMap<String, u64>) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let counts = report_counts(fleet)?;
        let behind = wanted
            .iter()
            .find(|(host, n)| counts.get(*host).copied().unwrap_or(0) < **n);
        let Some((host, n)) = behind else {
            return Ok(());
        };
        if Instant::now() >= end {
            // The first host behind, with its agent's journal, says why.
            return fleet.wait_reports(host, *n, Duration::ZERO);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn listing_text(incidents: &[&Value]) -> String {
    if incidents.is_empty() {
        return "no incident".into();
    }
    incidents
        .iter()
        .map(|i| {
            format!(
                "{} on {} ({})",
                verdict(i),
                i["host"].as_str().unwrap_or("?"),
                i["state"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn wait_healthy(l: &Layout) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(40);
    loop {
        let got = get_as(l.visit, &l.host_header, "/", Duration::from_secs(5));
        if matches!(got, Ok(200)) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < end,
            "cell {}: {} never answered 200: {got:?}",
            l.cell.id(),
            l.visit
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Seconds from `from` to when incident `i` opened.
fn seconds_to_open(i: &Value, from: OffsetDateTime) -> Option<f64> {
    let opened = OffsetDateTime::parse(i["opened_at"].as_str()?, &Rfc3339).ok()?;
    Some((opened - from).as_seconds_f64())
}
