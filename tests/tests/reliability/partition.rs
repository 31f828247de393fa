//! Agents cut off from the collectors, and an agent whose spool disk fills
//! up meanwhile. Two collectors sit behind relays on loopback ([`Relay`]);
//! simulated agents and one real `gw502-agent` reach them only through the
//! relays. The relays are cut for longer than the agent's report interval,
//! one simulated host's app fails during the cut, then the link heals.
//!
//! Behind a firewall that drops packets each send of the real agent hangs
//! for the client's timeouts; it must still make and spool a report every
//! interval. The checks count, from the agent's metrics: the spool grows to
//! about one report per interval of the cut, and by far more reports were
//! spooled than sends failed (before the fix each report waited for a
//! failed send, so the two were equal).
//!
//! In the spool variant the real agent's state directory is a 64 KiB tmpfs,
//! filled up while the agent is cut off: the disk refuses the reports it
//! makes then. They wait in memory (`gw502_agent_spool_overflow_reports`)
//! and nothing is lost; once the filler is removed they are written back to
//! disk, the agent is restarted while still cut off, and after the heal
//! every report of both runs is in the store exactly once, with nothing
//! counted as dropped (`gw502_agent_spool_dropped_total`, `spool_dropped`).

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::cut::{Link, Relay};
use super::disk_full::{Tmpfs, fill, operator_saw};
use super::load::{Load, Phase};
use super::real_agent::{RealAgent, missing, stored_seqs};
use super::receiver::Receiver;
use super::{
    Bench, INTERVAL, assert_exactly_once, figures, first_ack_after, full, hosts, opens, settle,
    until,
};

/// Waits until metric `name` of `agent` reaches `at_least`.
async fn metric_at_least(agent: &RealAgent, name: &str, at_least: f64) -> anyhow::Result<f64> {
    until(&format!("{name} reaches {at_least}"), async || {
        let v = agent.metric(name).await?;
        Ok((v >= at_least).then_some(v))
    })
    .await
}

/// The cut, with the spool disk filling up during it or not.
async fn cut_off(spool_disk_full: bool) -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let state = bench.fleet.path().join("real1-state");
    let _tmpfs = if spool_disk_full {
        match Tmpfs::mount(&state, 64) {
            Ok(tmpfs) => Some(tmpfs),
            Err(reason) => {
                eprintln!("skipped: cannot mount a tmpfs ({reason})");
                return Ok(());
            }
        }
    } else {
        None
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let a = bench.collector("collector-a", &hooks, "").await?;
    let b = bench.collector("collector-b", &hooks, "").await?;
    let relays = [Relay::start(a.addr).await?, Relay::start(b.addr).await?];
    let via: Vec<_> = relays.iter().map(|r| r.addr).collect();
    let n = hosts();
    let load = Load::start(bench.fleet.clone(), via.clone(), n, INTERVAL);
    let mut agent = RealAgent::start(&bench.fleet, "real1", &via, &state)?;
    agent.ready().await?;
    let mut db = bench.db().await?;
    until("the real agent's reports are stored", async || {
        Ok((stored_seqs(&mut db, "real1").await?.0.len() >= 2).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", agent.log_text()))?;
    until("every simulated agent reported", async || {
        let hosts: BTreeSet<String> = load.acks().into_iter().map(|a| a.host).collect();
        Ok((hosts.len() == n).then_some(()))
    })
    .await?;

    // The cut. Host 0's app fails while nobody can report it. A dropping
    // firewall for the partition; a rejecting one while the spool disk
    // fills (the agent's loop does not care which).
    let how = if spool_disk_full {
        Link::Reject
    } else {
        Link::Drop
    };
    let errors_before = agent.metric("gw502_agent_send_errors_total").await?;
    for r in &relays {
        r.set(how);
    }
    let cut_at = Instant::now();
    load.set(0, Phase::Down);
    metric_at_least(&agent, "gw502_agent_spool_reports", 2.0).await?;
    let mut filled = 0;
    let mut overflow_peak = 0.0;
    let mut first_run_log = String::new();
    if spool_disk_full {
        // The spool's disk fills up: what the agent makes now waits in memory.
        let filler = state.join("filler");
        filled = fill(&filler)?;
        // Held until memory holds 3 reports (12 in the full form; a report
        // takes 2 to 6 s to gather on the loaded development machine, so
        // the wait is in two steps, each with its own deadline).
        let held: f64 = if full() { 12.0 } else { 3.0 };
        for step in [(held / 2.0).ceil(), held] {
            overflow_peak =
                metric_at_least(&agent, "gw502_agent_spool_overflow_reports", step).await?;
        }
        let dropped = agent.metric("gw502_agent_spool_dropped_total").await?;
        assert_eq!(
            dropped,
            0.0,
            "the memory overflow holds: {}",
            agent.log_text()
        );
        std::fs::remove_file(&filler)?;
        // Space is back: what memory held is written back to disk.
        let waiting = agent.metric("gw502_agent_spool_reports").await?;
        until("the overflow is written back to disk", async || {
            let held = agent.metric("gw502_agent_spool_overflow_reports").await?;
            Ok((held == 0.0).then_some(()))
        })
        .await?;
        assert!(
            agent.metric("gw502_agent_spool_reports").await? >= waiting,
            "written back, not dropped"
        );
        // So a restart now loses nothing: stop and start it, still cut off.
        let status = agent.stop().await?;
        assert!(status.success(), "the agent exits 0: {}", agent.log_text());
        let stopped = agent.log_lines("agent stopped");
        assert!(
            stopped.iter().all(|l| !l.contains("waiting=0")),
            "reports waited at the stop: {stopped:?}"
        );
        first_run_log = agent.log_text();
        agent = RealAgent::start(&bench.fleet, "real1", &via, &state)?;
        agent.ready().await?;
        metric_at_least(&agent, "gw502_agent_spool_reports", waiting + 1.0).await?;
    } else {
        // The cut lasts 5 s (30 s in the full form) and the agent spools a
        // report per tick meanwhile: at least 3 (12). A tick takes what
        // gathering takes, about 2 s on the development machine (the Varnish
        // source alone) although the interval is 1 s.
        let hold = std::time::Duration::from_secs(if full() { 30 } else { 5 });
        until("the cut has lasted long enough", async || {
            Ok((cut_at.elapsed() >= hold).then_some(()))
        })
        .await?;
        let made = if full() { 12.0 } else { 3.0 };
        metric_at_least(&agent, "gw502_agent_spool_reports", made).await?;
    }
    let spool_peak = agent.metric("gw502_agent_spool_reports").await?;
    let send_errors = agent.metric("gw502_agent_send_errors_total").await? - errors_before;
    let dropped = agent.metric("gw502_agent_spool_dropped_total").await?;
    for r in &relays {
        r.set(Link::Up);
    }
    let healed = Instant::now();
    let cut_for = healed - cut_at;
    until("every simulated agent acknowledged again", async || {
        let back: BTreeSet<String> = load
            .acks()
            .into_iter()
            .filter(|a| a.at > healed)
            .map(|a| a.host)
            .collect();
        Ok((back.len() == n).then_some(()))
    })
    .await?;
    let sims_back = first_ack_after(&load.acks(), healed);
    until("the real agent's spool is empty", async || {
        Ok((agent.metric("gw502_agent_spool_reports").await? == 0.0).then_some(()))
    })
    .await?;
    let spool_drained = healed.elapsed();
    opens(&bench, 0).await?;
    let opened = healed.elapsed();
    settle(&bench, &load, &[0]).await?;
    let acks = load.stop().await?;
    let status = agent.stop().await?;
    assert!(status.success(), "the agent exits 0: {}", agent.log_text());

    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &[0]);
    // The real agent: every report it made (in both runs) is stored once,
    // and nothing was lost or counted as lost.
    let (seqs, carried) = stored_seqs(&mut db, "real1").await?;
    let twice = seqs.values().filter(|&&c| c > 1).count();
    let missing = missing(&seqs);
    assert_eq!(twice, 0, "real1 reports stored twice: {seqs:?}");
    assert_eq!(missing, 0, "real1 reports missing: {seqs:?}");
    assert_eq!(dropped, 0.0, "nothing was dropped");
    assert_eq!(carried, 0, "the store was told nothing was lost");
    if spool_disk_full {
        for said in [
            "spool disk refuses reports, holding them in memory",
            "spool memory overflow written back to disk",
        ] {
            assert!(first_run_log.contains(said), "{said}: {first_run_log}");
        }
    } else {
        // Gathering never waited for the sender: many more reports were
        // spooled than sends failed.
        assert!(
            spool_peak > 2.0 * send_errors.max(1.0),
            "spooled {spool_peak} while {send_errors} sends failed"
        );
    }
    let fault = if spool_disk_full {
        "agent-spool-disk-full"
    } else {
        "partition"
    };
    let instances: BTreeSet<&str> = seqs.keys().map(|(i, _)| i.as_str()).collect();
    println!(
        "figures: fault={fault} hosts={n}+1 real cut_ms={} sim_reports={} lost={} duplicated={} \
         incidents={} deliveries={} real_reports_stored={} real_runs={} real_spool_peak={spool_peak} \
         real_send_errors_in_cut={send_errors} real_overflow_peak={overflow_peak} \
         real_dropped_counted={dropped} real_missing={missing} real_duplicated={twice} \
         filler_bytes={filled} sims_back_ms={} real_spool_drained_ms={} incident_open_after_heal_ms={}",
        cut_for.as_millis(),
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        seqs.len(),
        instances.len(),
        sims_back.as_millis(),
        spool_drained.as_millis(),
        opened.as_millis(),
    );
    for line in operator_saw(&format!("{first_run_log}{}", agent.log_text())) {
        println!("operator saw: agent: {line}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_between_agents_and_collectors() -> anyhow::Result<()> {
    cut_off(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_spool_disk_fills_up_while_cut_off() -> anyhow::Result<()> {
    cut_off(true).await
}
