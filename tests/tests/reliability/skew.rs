//! Agent clocks that are wrong: one simulated agent stamps its reports (and
//! every time in them) 5 minutes ahead of the real clock, one 5 minutes
//! behind, one is right. Each one's app fails and recovers; the checks are
//! the usual ones (every report once, one incident per fault, each
//! delivery once) plus that the skewed hosts' incidents open and resolve
//! like the right one's, and that the collector measured the skew and
//! said so in its log.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row;
use tokio::time::Instant;

use super::load::{Load, Phase, host_site};
use super::receiver::Receiver;
use super::{
    Bench, INTERVAL, WAIT, all_resolved, assert_exactly_once, figures, hosts, incidents,
    pending_deliveries, until,
};

/// Five minutes, in milliseconds.
const FIVE_MINUTES: i64 = 5 * 60 * 1000;

/// Per host index, when its fault incident reached `state` (from `t`).
async fn wait_states(
    db: &mut sqlx::AnyConnection,
    hosts: &[usize],
    state: &str,
    t: Instant,
) -> anyhow::Result<BTreeMap<usize, Duration>> {
    let mut at = BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while at.len() < hosts.len() {
        let now = incidents(db).await?;
        for &i in hosts {
            let site = host_site(i).1;
            let reached = now
                .values()
                .any(|(s, cause, st)| *s == site && cause == "service_down" && st == state);
            if reached {
                at.entry(i).or_insert_with(|| t.elapsed());
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out: incidents {state}: only {at:?} of {hosts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_clocks_five_minutes_ahead_and_behind() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let a = bench.collector("collector-a", &hooks, "").await?;
    let b = bench.collector("collector-b", &hooks, "").await?;
    let n = hosts().max(3);
    // Host 0 is 5 minutes ahead, host 1 5 minutes behind, host 2 right.
    let skewed_from = Instant::now();
    let load = Load::start_skewed(
        bench.fleet.clone(),
        vec![a.addr, b.addr],
        n,
        INTERVAL,
        &[(0, FIVE_MINUTES), (1, -FIVE_MINUTES)],
    );
    until("every agent reported with its clock", async || {
        let hosts: std::collections::BTreeSet<String> = load
            .acks()
            .into_iter()
            .filter(|a| a.at > skewed_from)
            .map(|a| a.host)
            .collect();
        Ok((hosts.len() == n).then_some(()))
    })
    .await?;
    let mut db = bench.db().await?;
    let faulted = [0, 1, 2];
    let down = Instant::now();
    for &i in &faulted {
        load.set(i, Phase::Down);
    }
    let opened = wait_states(&mut db, &faulted, "open", down).await?;
    let up = Instant::now();
    for &i in &faulted {
        load.set(i, Phase::Up);
    }
    let resolved = wait_states(&mut db, &faulted, "resolved", up).await?;
    until("deliveries finish", async || {
        Ok((all_resolved(&mut db).await? && pending_deliveries(&mut db).await? == 0).then_some(()))
    })
    .await?;
    let acks = load.stop().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &faulted);
    // The stored times are the collector's: what the evaluator windows and
    // orders by, and what the operator sees as evidence times.
    let mut off = BTreeMap::new();
    for host in ["sim0", "sim1", "sim2"] {
        let row = sqlx::query(
            "SELECT MAX(ABS(generated_at_ms - received_at_ms)) AS off FROM reports \
             WHERE host_id = $1",
        )
        .bind(host)
        .fetch_one(&mut db)
        .await?;
        let ms: i64 = row.try_get("off")?;
        assert!(ms < 10_000, "{host}'s stored times are {ms} ms off");
        off.insert(host, ms);
    }
    let mut seen = a.log_lines("agent clock");
    seen.extend(b.log_lines("agent clock"));
    for host in ["sim0", "sim1"] {
        assert!(
            seen.iter().any(|l| l.contains(&format!("host={host}"))),
            "the collector logged {host}'s clock: {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|l| l.contains("host=sim2 ")),
        "the right clock is not reported: {seen:?}"
    );
    let ms = |m: &BTreeMap<usize, Duration>, i: usize| m.get(&i).map_or(0, |d| d.as_millis());
    println!(
        "figures: fault=agent-clock-skew hosts={n} reports={} lost={} duplicated={} incidents={} \
         deliveries={} opened_ms(ahead,behind,right)=({},{},{}) \
         resolved_ms(ahead,behind,right)=({},{},{}) stored_time_off_ms={off:?}",
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        ms(&opened, 0),
        ms(&opened, 1),
        ms(&opened, 2),
        ms(&resolved, 0),
        ms(&resolved, 1),
        ms(&resolved, 2),
    );
    let mut distinct = std::collections::BTreeSet::new();
    for line in seen {
        if let Some((_, rest)) = line.split_once("WARN") {
            distinct.insert(rest.trim().to_string());
        }
    }
    for line in distinct {
        println!("operator saw: {line}");
    }
    Ok(())
}
