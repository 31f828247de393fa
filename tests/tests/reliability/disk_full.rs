//! Full disks: the collector's SQLite file on a small tmpfs that fills up
//! under load and is freed again. The collector must refuse reports with
//! a retryable status while it cannot write (the agents keep them and
//! re-send), say so in its log, and once space is back store everything
//! exactly once, open the fault's incident once and deliver it once.
//!
//! The tmpfs is mounted for the test and unmounted when the guard drops,
//! on success and on failure alike; without the right to mount the test
//! says so and passes without running.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use gw502_tests::fleet::Fleet;
use tokio::time::Instant;

use super::load::{Load, Phase};
use super::pg::free_port;
use super::procs::{Collector, Spec, config_text};
use super::real_agent::{self, RealAgent, drained_once, reporting, send_errors, stored_seqs};
use super::receiver::Receiver;
use super::{
    INTERVAL, assert_exactly_once, connect, figures, first_ack_after, full, hosts, opens_in,
    settle_in, until,
};

pub use gw502_testkit::tmpfs::Tmpfs;

/// Writes zeros to `path` until the file system is full; returns the bytes
/// written.
pub fn fill(path: &Path) -> anyhow::Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let chunk = vec![0u8; 16 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // A last partial block: whatever is left goes too.
    while let Ok(n) = file.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    Ok(written)
}

/// The distinct WARN and ERROR messages of a log, without the error text.
pub fn operator_saw(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| {
            ["ERROR", "WARN"]
                .iter()
                .find_map(|level| l.split_once(level))
                .map(|(_, rest)| rest.trim().to_string())
        })
        .map(|rest| rest.split(" error=").next().unwrap_or_default().to_string())
        .collect()
}

/// The last lines of a log, for a failure message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_disk_fills_up_then_frees() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("gw502-sqlite-full")
        .tempdir()?;
    let small = dir.path().join("small");
    let _tmpfs = match Tmpfs::mount(&small, 16 * 1024) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("skipped: cannot mount a tmpfs ({reason})");
            return Ok(());
        }
    };
    let fleet = Arc::new(Fleet::new()?);
    let secret = fleet.path().join("hook.secret");
    std::fs::write(&secret, "reliability-secret\n")?;
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let url = format!("sqlite://{}", small.join("collector.db").display());
    let spec = Spec {
        id: "collector-a",
        database: &url,
        hooks: &hooks,
        extra: "",
    };
    let port = free_port()?;
    let text = config_text(&fleet, &spec, port, &secret);
    let collector = Collector::start(fleet.path(), "collector-a", port, &text).await?;
    let n = hosts();
    let load = Load::start(fleet.clone(), vec![collector.addr], n, INTERVAL);
    // A real agent beside them; its spool is on the big disk.
    let mut agent = RealAgent::start(
        &fleet,
        super::REAL,
        &[collector.addr],
        &fleet.path().join("real1-state"),
    )?;
    let mut db = connect(&url).await?;
    until("every agent reported", async || {
        let hosts: std::collections::BTreeSet<String> =
            load.acks().into_iter().map(|a| a.host).collect();
        Ok((hosts.len() == n).then_some(()))
    })
    .await?;
    reporting(&agent, &mut db, super::REAL).await?;
    let real_before = stored_seqs(&mut db, super::REAL).await?.0.len();
    let errors_before = send_errors(&agent).await?;
    // The disk fills up; host 0's app goes down meanwhile, so its incident
    // can only open once the store can write again.
    let filler = small.join("filler");
    let filled = fill(&filler)?;
    let full_at = Instant::now();
    load.set(0, Phase::Down);
    // Held until the agents were refused many times (15 tries per agent
    // in the short form, 100 in the full one).
    let rounds = if full() { 400 } else { 60 } * n / 4;
    let refused = until("the collector refuses reports", async || {
        let lines = collector.log_lines("database unavailable");
        Ok((lines.len() >= rounds).then_some(lines.len()))
    })
    .await?;
    // And until the real agent was refused too.
    real_agent::refused(&agent, errors_before).await?;
    let acked_while_full = load.acks().iter().filter(|a| a.at > full_at).count();
    std::fs::remove_file(&filler)?;
    let freed = Instant::now();
    until("every agent acknowledged again", async || {
        let back: std::collections::BTreeSet<String> = load
            .acks()
            .into_iter()
            .filter(|a| a.at > freed)
            .map(|a| a.host)
            .collect();
        Ok((back.len() == n).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", tail(&collector.log_text())))?;
    let agents_back = first_ack_after(&load.acks(), freed);
    let id = opens_in(&mut db, 0).await?;
    let opened = freed.elapsed();
    settle_in(&mut db, &load, &[0]).await?;
    let acks = load.stop().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &[0]);
    let real = drained_once(&mut agent, &mut db, super::REAL, real_before).await?;
    assert!(
        super::events_for(&hook, id, "firing") == 1,
        "the incident was delivered once: {f:?}"
    );
    let errors = collector.log_lines("database unavailable");
    assert!(
        errors.iter().any(|l| l.contains("full")),
        "the log says the disk is full: {:?}",
        errors.first()
    );
    // Reports that were late are not agents with a wrong clock.
    let clock = collector.log_lines("agent clock");
    assert!(clock.is_empty(), "late reports taken for skew: {clock:?}");
    println!(
        "figures: fault=sqlite-disk-full hosts={n} filler_bytes={filled} reports={} lost={} \
         duplicated={} refused={refused} acked_while_full={acked_while_full} incidents={} \
         deliveries={} agents_back_ms={} incident_open_after_free_ms={} {}",
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        agents_back.as_millis(),
        opened.as_millis(),
        real.figures(),
    );
    let text = collector.log_text();
    for line in operator_saw(&text) {
        println!("operator saw: {line}");
    }
    Ok(())
}
