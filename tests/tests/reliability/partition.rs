//! Agents cut off from the collectors, and an agent whose spool disk fills
//! up meanwhile. Two collectors sit behind relays on loopback ([`Relay`]);
//! simulated agents and one real `gw502-agent` reach them only through the
//! relays. The relays are cut for longer than the agent's report interval
//! (the real agent spools every report it makes meanwhile), one simulated
//! host's app fails during the cut, then the link heals.
//!
//! In the spool variant the real agent's state directory is a 64 KiB tmpfs,
//! filled up while the agent is cut off: the reports it makes then cannot
//! be spooled. They are lost, and the checks are that the loss is counted
//! (`gw502_agent_spool_dropped_total`, and `spool_dropped` in the next
//! report the collector stores), that exactly those reports are missing,
//! that nothing crashed, and that everything that was spooled is stored
//! exactly once.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::cut::{Link, Relay};
use super::disk_full::{Tmpfs, fill, operator_saw};
use super::load::{Load, Phase};
use super::real_agent::{RealAgent, stored_seqs};
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

    // The cut. Host 0's app fails while nobody can report it.
    // A dropping firewall for the partition; a rejecting one while the
    // spool disk fills, so the agent makes a report every interval (a
    // dropped connection holds its loop for the client's timeouts).
    let how = if spool_disk_full {
        Link::Reject
    } else {
        Link::Drop
    };
    for r in &relays {
        r.set(how);
    }
    let cut_at = Instant::now();
    load.set(0, Phase::Down);
    // The agent spooled what it made meanwhile, and the cut is longer than
    // its interval: 5 s in the short form, 30 s in the full one. (Behind a
    // dropping firewall the agent makes few reports: its loop waits for
    // the client's timeouts before it gathers the next one.)
    metric_at_least(&agent, "gw502_agent_spool_reports", 1.0).await?;
    if !spool_disk_full {
        let hold = std::time::Duration::from_secs(if full() { 30 } else { 5 });
        until("the cut has lasted long enough", async || {
            Ok((cut_at.elapsed() >= hold).then_some(()))
        })
        .await?;
    } else {
        metric_at_least(&agent, "gw502_agent_spool_reports", 2.0).await?;
    }
    let mut filled = 0;
    if spool_disk_full {
        // The spool's disk fills up: what the agent makes now is lost.
        let filler = state.join("filler");
        filled = fill(&filler)?;
        let drops = if full() { 20.0 } else { 3.0 };
        metric_at_least(&agent, "gw502_agent_spool_dropped_total", drops).await?;
        std::fs::remove_file(&filler)?;
        // Space is back: the next report is spooled again.
        let now = agent.metric("gw502_agent_spool_reports").await?;
        metric_at_least(&agent, "gw502_agent_spool_reports", now + 1.0).await?;
    }
    let spool_peak = agent.metric("gw502_agent_spool_reports").await?;
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
    // The real agent: every report it made is stored once, except the
    // ones its full disk could not take, and those are counted.
    let (seqs, carried) = stored_seqs(&mut db, "real1").await?;
    let last = seqs.keys().max().copied().unwrap_or(0);
    let twice = seqs.values().filter(|&&c| c > 1).count();
    let missing = (1..=last).filter(|s| !seqs.contains_key(s)).count();
    assert_eq!(twice, 0, "real1 reports stored twice: {seqs:?}");
    assert_eq!(
        missing as f64, dropped,
        "the reports missing are exactly the ones counted as dropped: {seqs:?}"
    );
    assert_eq!(carried as f64, dropped, "the store was told what was lost");
    if spool_disk_full {
        assert!(dropped > 0.0, "the full disk dropped reports");
        assert!(
            !agent.log_lines("spool cannot keep a report").is_empty(),
            "{}",
            agent.log_text()
        );
    } else {
        assert_eq!(dropped, 0.0, "a cut alone loses nothing");
    }
    let fault = if spool_disk_full {
        "agent-spool-disk-full"
    } else {
        "partition"
    };
    println!(
        "figures: fault={fault} hosts={n}+1 real cut_ms={} sim_reports={} lost={} duplicated={} \
         incidents={} deliveries={} real_reports_stored={} real_spool_peak={spool_peak} \
         real_dropped_counted={dropped} real_missing={missing} real_duplicated={twice} \
         filler_bytes={filled} sims_back_ms={} real_spool_drained_ms={} incident_open_after_heal_ms={}",
        cut_for.as_millis(),
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        seqs.len(),
        sims_back.as_millis(),
        spool_drained.as_millis(),
        opened.as_millis(),
    );
    for line in operator_saw(&agent.log_text()) {
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
