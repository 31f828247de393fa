//! Time to attribution, gw502 next to Prometheus blackbox_exporter + Alertmanager, measured
//! in the same run: for each of five lab faults, one fresh lab fleet (real systemd hosts,
//! agents every 2 s, the collector probing every 1 s, as in `tests/tests/lab_scenarios.rs`)
//! and, beside it on the machine, blackbox_exporter, Prometheus and Alertmanager at their
//! default intervals probing the same site URL (see `time_to_attribution/peer.rs`).
//!
//! After the fault the run waits for both gw502's incident with the expected verdict and
//! Alertmanager's first firing webhook, and polls the site itself every 200 ms to record
//! when a visitor first saw an error. Prometheus scrapes once a minute, so the peer's time
//! depends on where in that minute the fault lands: each fault is injected at a chosen
//! number of seconds after Prometheus' last healthy scrape, spread evenly over the minute
//! across the faults (6, 18, 30, 42 and 54 s for five), and the table says which. It also
//! splits the peer's time: when Prometheus scraped the failed probe (`timestamp(probe_success)`)
//! and when its rule fired (the alert's `activeAt`); Alertmanager's group_wait is the rest.
//!
//! Run (root, debug binaries first; the Debian packages `prometheus`,
//! `prometheus-blackbox-exporter` and `prometheus-alertmanager`):
//! `cargo build --workspace --bins && cargo run -p gw502-tests --example time_to_attribution`
//! Knobs: `TTA_ONLY=1,4` runs a subset; `TTA_PHASE_S=30` injects every fault that many
//! seconds after the last healthy scrape; `TTA_DEADLINE_S` (default 300) bounds the wait
//! for both after each fault. Its unit tests: `cargo test -p gw502-tests --example
//! time_to_attribution`.

#[path = "time_to_attribution/peer.rs"]
mod peer;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use gw502_tests::lab::{self, HostSpec, run};
use gw502_tests::scenario::cases::{Expect, cases, verdict};
use gw502_tests::scenario::traffic::{Load, get};
use gw502_tests::scenario::{LabFleet, LabSite};
use serde_json::Value;

/// Default bound on the wait for both gw502 and the peer after a fault.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
/// How long Prometheus may take to scrape the healthy site for the first time.
const FIRST_SCRAPE_DEADLINE: Duration = Duration::from_secs(150);
/// How often the visibility poller requests the site.
const VISIT_EVERY: Duration = Duration::from_millis(200);
/// How often gw502's incidents and the webhook are checked after the fault.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// One fault, set up as its case in the lab suite (`scenario::cases`).
struct Fault {
    /// Its number in `docs/LAB_RESULTS.md`.
    number: u32,
    name: &'static str,
    site: LabSite,
    hosts: Vec<HostSpec>,
    /// Where visitors (and blackbox_exporter, through `site.url`) go.
    visit: SocketAddr,
    inject: fn(&LabFleet) -> anyhow::Result<()>,
    expect: Expect,
}

/// What one fault measured.
struct Row {
    number: u32,
    fault: &'static str,
    verdict: String,
    gw502: Option<f64>,
    visible: Option<(f64, String)>,
    phase: f64,
    peer: Option<f64>,
    /// When Prometheus scraped the failed probe, and when its rule found the alert firing.
    peer_scraped: Option<f64>,
    peer_fired: Option<f64>,
    peer_says: String,
}

/// The faults compared, by their number in the lab suite, in this order.
const FAULTS: [u32; 5] = [1, 2, 11, 7, 10];

/// The lab suite's cases numbered in [`FAULTS`], as faults to measure.
fn faults() -> anyhow::Result<Vec<Fault>> {
    let mut faults = Vec::new();
    for case in cases().into_iter().filter(|c| FAULTS.contains(&c.number)) {
        let expect = *case
            .then
            .expected()
            .with_context(|| format!("case {} expects no incident", case.number))?;
        let site = case
            .sites
            .first()
            .cloned()
            .context("a case without a site")?;
        faults.push(Fault {
            number: case.number,
            name: case.fault,
            site,
            hosts: case.hosts,
            visit: case.visit.0.parse()?,
            inject: case.inject,
            expect,
        });
    }
    faults.sort_by_key(|f| FAULTS.iter().position(|n| *n == f.number));
    Ok(faults)
}

/// Poll until `/` at `addr` answers 200.
fn wait_healthy(addr: SocketAddr) -> anyhow::Result<()> {
    let healthy = run::poll_until(Instant::now() + Duration::from_secs(30), || {
        matches!(get(addr, "/", Duration::from_secs(5)), Ok(200)).then_some(())
    });
    healthy.with_context(|| format!("{addr}/ never answered 200"))
}

/// A visitor requesting the site every [`VISIT_EVERY`] until the first answer that is not
/// 2xx (or no answer at all), which it reports with its time since `since`.
struct Visibility {
    first: mpsc::Receiver<(f64, String)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Visibility {
    fn start(addr: SocketAddr, since: Instant) -> Visibility {
        let (sender, first) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let seen = match get(addr, "/", Duration::from_secs(20)) {
                    Ok(status) if (200..300).contains(&status) => None,
                    Ok(0) => Some("no status line".to_owned()),
                    Ok(status) => Some(status.to_string()),
                    Err(error) => Some(format!("{:?}", error.kind())),
                };
                if let Some(what) = seen {
                    let _ = sender.send((since.elapsed().as_secs_f64(), what));
                    return;
                }
                std::thread::sleep(VISIT_EVERY);
            }
        });
        Visibility {
            first,
            stop,
            thread: Some(thread),
        }
    }

    /// The first error seen, if one was.
    fn first(&self) -> Option<(f64, String)> {
        self.first.try_recv().ok()
    }
}

impl Drop for Visibility {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Run one fault on a fresh fleet with the peer beside it, the fault landing `phase`
/// seconds after Prometheus' last healthy scrape.
fn measure(fault: Fault, phase: f64, deadline: Duration) -> anyhow::Result<Row> {
    let names: Vec<String> = fault.hosts.iter().map(|h| h.name.clone()).collect();
    let mut fleet = LabFleet::start(std::slice::from_ref(&fault.site))?;
    fleet.boot(fault.hosts)?;
    wait_healthy(fault.visit)?;
    for name in &names {
        fleet.wait_reports(name, 2, Duration::from_secs(30))?;
    }
    let stack = peer::Stack::start(&fault.site.name, &fault.site.url)?;
    let scraped = stack.wait_healthy_scrape(FIRST_SCRAPE_DEADLINE)?;
    // Scheduling the injection at a point of the scrape minute, not waiting on a result.
    let wait = scraped + phase - peer::unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    let before: BTreeSet<u64> = fleet
        .incidents(true)?
        .iter()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    let phase = peer::unix_now() - scraped;
    let started = Instant::now();
    let started_unix = peer::unix_now();
    let visibility = Visibility::start(fault.visit, started);
    (fault.inject)(&fleet)?;
    let _load = Load::start(fault.visit, "/", 2, Duration::from_millis(250));
    let new = |i: &Value| i["id"].as_u64().is_some_and(|id| !before.contains(&id));
    let mut row = Row {
        number: fault.number,
        fault: fault.name,
        verdict: String::new(),
        gw502: None,
        visible: None,
        phase,
        peer: None,
        peer_scraped: None,
        peer_fired: None,
        peer_says: String::new(),
    };
    let mut listing = Vec::new();
    let mut alert = None;
    let end = started + deadline;
    while (row.gw502.is_none() || alert.is_none()) && Instant::now() < end {
        if row.gw502.is_none() {
            listing = fleet.incidents(true)?;
            if let Some(found) = listing.iter().find(|i| new(i) && fault.expect.matches(i)) {
                row.gw502 = Some(started.elapsed().as_secs_f64());
                row.verdict = verdict(found);
            }
        }
        if alert.is_none() {
            if row.peer_scraped.is_none() {
                row.peer_scraped = stack.failed_scrape().map(|t| t - started_unix);
            }
            alert = stack.firing();
            if alert.is_some() {
                row.peer_fired = match stack.active_at() {
                    Ok(at) => Some(at - started_unix),
                    Err(error) => {
                        eprintln!("no activeAt from prometheus: {error:#}");
                        None
                    }
                };
            }
        }
        if row.visible.is_none() {
            row.visible = visibility.first();
        }
        std::thread::sleep(CHECK_EVERY);
    }
    if row.visible.is_none() {
        row.visible = visibility.first();
    }
    if row.gw502.is_none() {
        let got: Vec<String> = listing.iter().filter(|i| new(i)).map(verdict).collect();
        row.verdict = format!(
            "{} (expected {})",
            if got.is_empty() {
                "no incident".to_owned()
            } else {
                got.join("; ")
            },
            fault.expect.text()
        );
    }
    match alert {
        Some(alert) => {
            row.peer = Some(alert.at.duration_since(started).as_secs_f64());
            row.peer_says = alert.says;
        }
        None => row.peer_says = format!("no alert within {} s", deadline.as_secs()),
    }
    Ok(row)
}

/// The first line a program prints for `--version`.
fn version(program: &str) -> String {
    run::output_within(
        Command::new(program).arg("--version"),
        Duration::from_secs(10),
    )
    .map(|out| {
        let text = [out.stdout, out.stderr].concat();
        let text = String::from_utf8_lossy(&text);
        text.lines().next().unwrap_or("").trim().to_owned()
    })
    .unwrap_or_else(|error| format!("{program}: {error:#}"))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = run::output_within(
        Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]),
        Duration::from_secs(10),
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    .unwrap_or_default();
    format!(
        "Machine: {cpus} CPUs (nproc), kernel {}, run {date}.\nPeer: {}; {}; {}.",
        kernel.trim(),
        version("/usr/bin/prometheus"),
        version("/usr/bin/prometheus-blackbox-exporter"),
        version("/usr/bin/prometheus-alertmanager"),
    )
}

fn secs(s: Option<f64>) -> String {
    s.map_or("-".to_owned(), |s| format!("{s:.1}"))
}

/// The peer's seconds, with when Prometheus scraped the failure and when its rule fired.
fn peer_cell(r: &Row) -> String {
    format!(
        "{} (scraped {}, rule fired {})",
        secs(r.peer),
        secs(r.peer_scraped),
        secs(r.peer_fired)
    )
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| # | fault | gw502 verdict | gw502 s | first visible error s | fault at s after last scrape | blackbox+Alertmanager s | what the peer's alert says |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let visible = r
            .visible
            .as_ref()
            .map_or("-".to_owned(), |(s, what)| format!("{s:.1} ({what})"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} |\n",
            r.number,
            r.fault,
            r.verdict,
            secs(r.gw502),
            visible,
            r.phase,
            peer_cell(r),
            r.peer_says.replace('|', "\\|"),
        ));
    }
    out
}

fn env_secs(name: &str) -> anyhow::Result<Option<f64>> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .with_context(|| format!("{name}={v:?} is not a number of seconds"))
        })
        .transpose()
}

fn main() -> anyhow::Result<()> {
    let only: Option<BTreeSet<u32>> = std::env::var("TTA_ONLY")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let fixed_phase = env_secs("TTA_PHASE_S")?;
    let deadline = env_secs("TTA_DEADLINE_S")?.map_or(DEFAULT_DEADLINE, Duration::from_secs_f64);
    let chosen: Vec<Fault> = faults()?
        .into_iter()
        .filter(|f| only.as_ref().is_none_or(|o| o.contains(&f.number)))
        .collect();
    let machine = machine();
    let count = chosen.len();
    let mut rows = Vec::new();
    for (k, fault) in chosen.into_iter().enumerate() {
        let phase = fixed_phase
            .unwrap_or(peer::DEFAULT_INTERVAL.as_secs_f64() * (k as f64 + 0.5) / count as f64);
        let (number, name) = (fault.number, fault.name);
        eprintln!("fault {number} ({name}): injecting {phase:.0} s after a healthy scrape");
        let row = measure(fault, phase, deadline).with_context(|| format!("fault {number}"))?;
        eprintln!(
            "fault {number}: gw502 {} s, visible {:?}, peer {} s",
            secs(row.gw502),
            row.visible,
            secs(row.peer)
        );
        rows.push(row);
    }
    let left = lab::leftovers();
    println!("{machine}\n\n{}", table(&rows));
    anyhow::ensure!(left.is_empty(), "the lab left behind: {left:?}");
    Ok(())
}
