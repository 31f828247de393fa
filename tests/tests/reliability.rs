//! The fault tests of issue 14: real `gw502-collector` processes on a real,
//! private PostgreSQL, simulated agents under steady load (testkit reports
//! over real mTLS gRPC), one real `gw502-agent` process beside them and real
//! local webhook receivers. Each test injects one fault into the running
//! fleet and then checks, from the database and the receivers:
//!
//! - every report an agent had acknowledged is stored, and stored once;
//! - every report the real agent made, from seq 1 to its last, is stored
//!   once and its spool drained;
//! - every incident the injected 502 fault opened is there once;
//! - every delivery reached its receiver once (per incident and event, one
//!   idempotency key; a redelivery in the one unclosable window carries
//!   the same key and is counted separately);
//! - how long recovery took, and the log lines the operator saw.
//!
//! The short form runs in the normal suite. The full form (PostgreSQL away
//! for 60 s, more agents, longer load) is one command:
//!
//! ```text
//! GW502_RELIABILITY_FULL=1 cargo test -p gw502-tests --test reliability -- --nocapture
//! ```
//!
//! Every test prints a `figures:` line; docs/RELIABILITY.md keeps them.
//! Waits poll with a deadline; no assertion depends on a sleep or a timing.

#[path = "reliability/cut.rs"]
mod cut;
#[path = "reliability/disk_full.rs"]
mod disk_full;
#[path = "reliability/load.rs"]
mod load;
#[path = "reliability/partition.rs"]
mod partition;
#[path = "reliability/pg.rs"]
mod pg;
#[path = "reliability/procs.rs"]
mod procs;
#[path = "reliability/real_agent.rs"]
mod real_agent;
#[path = "reliability/receiver.rs"]
mod receiver;
#[path = "reliability/skew.rs"]
mod skew;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gw502_pki::Role;
use gw502_tests::fleet::Fleet;
use nix::sys::signal::Signal;
use sqlx::{Connection, Row};
use tokio::time::Instant;

use load::{Ack, Load, Phase, host_site};
use pg::{PgCluster, free_port};
use procs::{Collector, Spec, config_text};
use real_agent::{RealAgent, drained_once, refused, reporting, send_errors, stored_seqs};
use receiver::{Mode, Receiver, Tally};

/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(60);

fn full() -> bool {
    std::env::var_os("GW502_RELIABILITY_FULL").is_some()
}

/// Simulated agents: 4 in the short form, 16 in the full one.
fn hosts() -> usize {
    if full() { 16 } else { 4 }
}

const INTERVAL: Duration = Duration::from_millis(150);

/// The host id of the real agent that joins each fault.
const REAL: &str = "real1";

/// The PKI, a private PostgreSQL and a webhook secret for one test.
struct Bench {
    fleet: Arc<Fleet>,
    pg: PgCluster,
    secret: PathBuf,
}

impl Bench {
    async fn start() -> anyhow::Result<Option<Bench>> {
        let Some(pg) = PgCluster::start().await? else {
            return Ok(None);
        };
        let fleet = Arc::new(Fleet::new()?);
        let secret = fleet.path().join("hook.secret");
        std::fs::write(&secret, "reliability-secret\n")?;
        Ok(Some(Bench { fleet, pg, secret }))
    }

    async fn collector(
        &self,
        id: &str,
        hooks: &[(&str, String)],
        extra: &str,
    ) -> anyhow::Result<Collector> {
        let url = self.pg.url();
        let spec = Spec {
            id,
            database: &url,
            hooks,
            extra,
        };
        let port = free_port()?;
        let text = config_text(&self.fleet, &spec, port, &self.secret);
        Collector::start(self.fleet.path(), id, port, &text).await
    }

    async fn db(&self) -> anyhow::Result<sqlx::AnyConnection> {
        connect(&self.pg.url()).await
    }

    /// The real agent [`REAL`] reporting to `collectors`, in this order.
    fn real_agent(&self, collectors: &[std::net::SocketAddr]) -> anyhow::Result<RealAgent> {
        let state = self.fleet.path().join(format!("{REAL}-state"));
        RealAgent::start(&self.fleet, REAL, collectors, &state)
    }
}

/// A connection to a collector's store, PostgreSQL or SQLite.
async fn connect(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    Ok(sqlx::AnyConnection::connect(url).await?)
}

/// Polls `check` until it gives a value, at most [`WAIT`].
async fn until<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(site, state)` of every incident, by id.
async fn incidents(
    db: &mut sqlx::AnyConnection,
) -> anyhow::Result<BTreeMap<i64, (String, String, String)>> {
    let rows = sqlx::query("SELECT id, site, cause, state FROM incidents")
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                (r.try_get("site")?, r.try_get("cause")?, r.try_get("state")?),
            ))
        })
        .collect()
}

async fn open_fault(db: &mut sqlx::AnyConnection, site: &str) -> anyhow::Result<Option<i64>> {
    Ok(incidents(db)
        .await?
        .into_iter()
        .find(|(_, (s, cause, state))| s == site && cause == "service_down" && state == "open")
        .map(|(id, _)| id))
}

/// Whether every incident of the simulated hosts' sites is resolved (a
/// site added by a reload is probed for real and may keep failing; the
/// routing rules send only the simulated sites' incidents).
async fn all_resolved(db: &mut sqlx::AnyConnection) -> anyhow::Result<bool> {
    Ok(incidents(db)
        .await?
        .values()
        .filter(|(site, _, _)| site.starts_with("sim"))
        .all(|(_, _, state)| state == "resolved"))
}

async fn pending_deliveries(db: &mut sqlx::AnyConnection) -> anyhow::Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'")
        .fetch_one(db)
        .await?;
    Ok(row.try_get("n")?)
}

async fn site_lease_holders(
    db: &mut sqlx::AnyConnection,
) -> anyhow::Result<BTreeMap<String, String>> {
    let rows = sqlx::query(
        "SELECT name, holder FROM leases WHERE name LIKE 'site/%' AND holder <> '' \
         AND expires_at_ms > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    )
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("holder")?)))
        .collect()
}

/// What the checks found after a fault.
#[derive(Debug, Default)]
struct Figures {
    reports_acked: usize,
    lost: usize,
    duplicated: usize,
    fault_incidents: BTreeMap<String, usize>,
    tallies: Vec<(String, Tally)>,
    delivered_rows: i64,
}

/// Compares what the agents had acknowledged with the store, counts the
/// fault's incidents per site and what each receiver took.
async fn figures(
    db: &mut sqlx::AnyConnection,
    acks: &[Ack],
    receivers: &[(&str, &Receiver)],
) -> anyhow::Result<Figures> {
    let rows = sqlx::query("SELECT host_id, agent_instance, seq FROM reports")
        .fetch_all(&mut *db)
        .await?;
    // Per host and agent run: a restarted agent counts its seqs afresh.
    let mut stored: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in &rows {
        let host: String = r.try_get("host_id")?;
        let instance: String = r.try_get("agent_instance")?;
        let seq: i64 = r.try_get("seq")?;
        stored.entry((host, instance)).or_default().push(seq as u64);
    }
    let acked = load::acked(acks);
    let mut f = Figures {
        reports_acked: acked.values().map(BTreeSet::len).sum(),
        ..Figures::default()
    };
    for (host, seqs) in &acked {
        let have: BTreeSet<u64> = stored
            .iter()
            .filter(|((h, _), _)| h == host)
            .flat_map(|(_, seqs)| seqs.iter().copied())
            .collect();
        f.lost += seqs.difference(&have).count();
    }
    for seqs in stored.values() {
        let distinct: BTreeSet<&u64> = seqs.iter().collect();
        f.duplicated += seqs.len() - distinct.len();
    }
    for (_, (site, cause, _)) in incidents(db).await? {
        if cause == "service_down" {
            *f.fault_incidents.entry(site).or_default() += 1;
        }
    }
    for (name, r) in receivers {
        f.tallies.push((name.to_string(), r.tally()));
    }
    let row = sqlx::query("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'delivered'")
        .fetch_one(&mut *db)
        .await?;
    f.delivered_rows = row.try_get("n")?;
    Ok(f)
}

/// The checks every fault test ends with.
fn assert_exactly_once(f: &Figures, faulted: &[usize]) {
    assert_eq!(f.lost, 0, "reports lost: {f:?}");
    assert_eq!(f.duplicated, 0, "reports stored twice: {f:?}");
    assert!(f.reports_acked > 0, "the agents reported: {f:?}");
    for &i in faulted {
        let site = host_site(i).1;
        assert_eq!(
            f.fault_incidents.get(&site),
            Some(&1),
            "one incident for {site}: {f:?}"
        );
    }
    let mut accepted = 0;
    for (name, t) in &f.tallies {
        assert_eq!(
            t.events_with_two_keys, 0,
            "{name}: an event under two keys: {f:?}"
        );
        assert_eq!(
            t.distinct_keys, t.events,
            "{name}: one key per event: {f:?}"
        );
        accepted += t.distinct_keys as i64;
    }
    assert_eq!(
        accepted, f.delivered_rows,
        "every delivered row reached its receiver once: {f:?}"
    );
}

/// Waits for `site`'s fault incident to open; returns its id.
async fn opens(bench: &Bench, i: usize) -> anyhow::Result<i64> {
    opens_in(&mut bench.db().await?, i).await
}

/// [`opens`] on a given store.
async fn opens_in(db: &mut sqlx::AnyConnection, i: usize) -> anyhow::Result<i64> {
    let site = host_site(i).1;
    until(&format!("incident opens on {site}"), async || {
        open_fault(db, &site).await
    })
    .await
}

/// Ends the faults of `hosts`, and waits until every incident resolved and
/// every delivery is done.
async fn settle(bench: &Bench, load: &Load, faulted: &[usize]) -> anyhow::Result<()> {
    settle_in(&mut bench.db().await?, load, faulted).await
}

/// [`settle`] on a given store.
async fn settle_in(
    db: &mut sqlx::AnyConnection,
    load: &Load,
    faulted: &[usize],
) -> anyhow::Result<()> {
    for &i in faulted {
        load.set(i, Phase::Up);
    }
    until("incidents resolve and deliveries finish", async || {
        Ok((all_resolved(db).await? && pending_deliveries(db).await? == 0).then_some(()))
    })
    .await
}

fn events_for(r: &Receiver, id: i64, event: &str) -> usize {
    r.accepted()
        .iter()
        .filter(|g| g.incident == id as u64 && g.event == event)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_two_collectors() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let mut a = bench.collector("collector-a", &hooks, "").await?;
    let b = bench.collector("collector-b", &hooks, "").await?;
    let n = hosts();
    let load = Load::start(bench.fleet.clone(), vec![a.addr, b.addr], n, INTERVAL);
    // A real agent beside them, on collector-a first, collector-b second.
    let mut agent = bench.real_agent(&[a.addr, b.addr])?;
    let mut db = bench.db().await?;
    // Every site has a holder before the fault.
    until("every site leased", async || {
        Ok((site_lease_holders(&mut db).await?.len() == n).then_some(()))
    })
    .await?;
    reporting(&agent, &mut db, REAL).await?;
    let before = site_lease_holders(&mut db).await?;
    let on_a: Vec<String> = before
        .iter()
        .filter(|(_, h)| *h == "collector-a")
        .map(|(s, _)| s.clone())
        .collect();
    // Half the hosts fail first; their incidents open, and the receiver
    // takes 700 ms to answer, so deliveries are in flight at the kill.
    hook.set(Mode::Slow);
    let first: Vec<usize> = (0..n / 2).collect();
    for &i in &first {
        load.set(i, Phase::Down);
    }
    for &i in &first {
        opens(&bench, i).await?;
    }
    until("a delivery is in flight", async || {
        Ok((!hook.got().is_empty()).then_some(()))
    })
    .await?;
    // kill -9 A under load; the other half fails right then.
    let real_before = stored_seqs(&mut db, REAL).await?.0.len();
    let killed = Instant::now();
    a.kill9()?;
    hook.set(Mode::Ok);
    let second: Vec<usize> = (n / 2..n).collect();
    for &i in &second {
        load.set(i, Phase::Down);
    }
    let leases_back = until("collector-b holds every site", async || {
        let holders = site_lease_holders(&mut db).await?;
        Ok(
            (holders.len() == n && holders.values().all(|h| h == "collector-b"))
                .then(|| killed.elapsed()),
        )
    })
    .await?;
    let mut opened = Vec::new();
    for &i in &second {
        opened.push(opens(&bench, i).await?);
    }
    let delivered = until(
        "incidents opened after the kill are delivered",
        async || {
            Ok(opened
                .iter()
                .all(|&id| events_for(&hook, id, "firing") > 0)
                .then(|| killed.elapsed()))
        },
    )
    .await?;
    until("every agent reports again", async || {
        let back: BTreeSet<String> = load
            .acks()
            .iter()
            .filter(|a| a.at > killed)
            .map(|a| a.host.clone())
            .collect();
        Ok((back.len() == n).then_some(()))
    })
    .await?;
    let first_back = first_ack_after(&load.acks(), killed);
    let all: Vec<usize> = (0..n).collect();
    settle(&bench, &load, &all).await?;
    let acks = load.stop().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &all);
    let real = drained_once(&mut agent, &mut db, REAL, real_before).await?;
    assert!(
        real.switches >= 1.0,
        "the real agent failed over to collector-b: {real:?}"
    );
    let takeovers = b.log_lines("site lease taken over");
    assert!(
        on_a.is_empty() || !takeovers.is_empty(),
        "collector-b logged the takeover of {on_a:?}"
    );
    let resent = acks.iter().filter(|a| a.duplicate).count();
    println!(
        "figures: fault=kill-9 hosts={n} reports={} lost={} duplicated={} resent_seen_as_duplicate={resent} \
         incidents={} deliveries={} redelivered_same_key={} leases_taken_over={} \
         agents_back_ms={} leases_back_ms={} first_delivery_after_kill_ms={} {}",
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        f.tallies[0].1.accepted - f.tallies[0].1.distinct_keys,
        takeovers.len(),
        first_back.as_millis(),
        leases_back.as_millis(),
        delivered.as_millis(),
        real.figures(),
    );
    for line in takeovers {
        println!("operator saw: {line}");
    }
    Ok(())
}

/// The longest time any host took to get a report acknowledged after `t`.
fn first_ack_after(acks: &[Ack], t: Instant) -> Duration {
    let mut first: BTreeMap<&str, Instant> = BTreeMap::new();
    for a in acks.iter().filter(|a| a.at > t) {
        let e = first.entry(a.host.as_str()).or_insert(a.at);
        if a.at < *e {
            *e = a.at;
        }
    }
    first.values().map(|at| *at - t).max().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_then_away() -> anyhow::Result<()> {
    let Some(mut bench) = Bench::start().await? else {
        return Ok(());
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let a = bench.collector("collector-a", &hooks, "").await?;
    let b = bench.collector("collector-b", &hooks, "").await?;
    let n = hosts();
    let load = Load::start(bench.fleet.clone(), vec![a.addr, b.addr], n, INTERVAL);
    let mut agent = bench.real_agent(&[a.addr, b.addr])?;
    load.set(0, Phase::Down);
    opens(&bench, 0).await?;
    let real_before = reporting(&agent, &mut bench.db().await?, REAL).await?;
    // A restart: down and straight back up.
    bench.pg.stop()?;
    bench.pg.resume().await?;
    let restarted = Instant::now();
    until("reports flow after the restart", async || {
        Ok(load.acks().iter().any(|a| a.at > restarted).then_some(()))
    })
    .await?;
    let after_restart = first_ack_after(&load.acks(), restarted);
    // Away for a while, with a second fault starting meanwhile.
    let away = if full() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(5)
    };
    let errors_before = send_errors(&agent).await?;
    bench.pg.stop()?;
    load.set(1, Phase::Down);
    tokio::time::sleep(away).await;
    // Held on until the real agent was refused too.
    refused(&agent, errors_before).await?;
    bench.pg.resume().await?;
    let back = Instant::now();
    let id = opens(&bench, 1).await?;
    until(
        "the incident opened after the outage is delivered",
        async || Ok((events_for(&hook, id, "firing") > 0).then_some(())),
    )
    .await?;
    let delivered = back.elapsed();
    until("every agent reports again", async || {
        let hosts: BTreeSet<String> = load
            .acks()
            .iter()
            .filter(|a| a.at > back)
            .map(|a| a.host.clone())
            .collect();
        Ok((hosts.len() == n).then_some(()))
    })
    .await?;
    let agents_back = first_ack_after(&load.acks(), back);
    settle(&bench, &load, &[0, 1]).await?;
    let acks = load.stop().await?;
    let mut db = bench.db().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &[0, 1]);
    let real = drained_once(&mut agent, &mut db, REAL, real_before).await?;
    let warned: Vec<String> = [&a, &b].iter().flat_map(|c| c.log_lines("WARN")).collect();
    println!(
        "figures: fault=postgres-restart+away away_s={} hosts={n} reports={} lost={} duplicated={} \
         incidents={} deliveries={} agents_back_after_restart_ms={} agents_back_after_outage_ms={} \
         delivery_after_outage_ms={} collector_warnings={} {}",
        away.as_secs(),
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        after_restart.as_millis(),
        agents_back.as_millis(),
        delivered.as_millis(),
        warned.len(),
        real.figures(),
    );
    for line in distinct_messages(&warned) {
        println!("operator saw: {line}");
    }
    Ok(())
}

/// The distinct log messages of `lines` (time stamps and fields cut).
fn distinct_messages(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            l.split_once("WARN")
                .map(|(_, rest)| rest.trim().to_string())
        })
        .map(|rest| rest.split(" error=").next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_hangs_then_fails_then_recovers() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let slow = Receiver::start().await?;
    let steady = Receiver::start().await?;
    slow.set(Mode::Hang);
    let hooks = [("slow", slow.url()), ("steady", steady.url())];
    let a = bench.collector("collector-a", &hooks, "").await?;
    let load = Load::start(bench.fleet.clone(), vec![a.addr], 2, INTERVAL);
    load.set(0, Phase::Down);
    let id = opens(&bench, 0).await?;
    // The hanging receiver holds nothing up for the other one.
    until("the steady receiver has the firing", async || {
        Ok((events_for(&steady, id, "firing") == 1).then_some(()))
    })
    .await?;
    until("the hanging receiver was tried twice", async || {
        Ok((slow.got().len() >= 2).then_some(()))
    })
    .await?;
    slow.set(Mode::Fail);
    let failing = slow.got().len();
    until("the failing receiver was tried twice", async || {
        Ok((slow.got().len() >= failing + 2).then_some(()))
    })
    .await?;
    slow.set(Mode::Ok);
    let recovered = Instant::now();
    until("the recovered receiver has the firing", async || {
        Ok((events_for(&slow, id, "firing") == 1).then_some(()))
    })
    .await?;
    let took = recovered.elapsed();
    settle(&bench, &load, &[0]).await?;
    let acks = load.stop().await?;
    let mut db = bench.db().await?;
    let f = figures(&mut db, &acks, &[("slow", &slow), ("steady", &steady)]).await?;
    assert_exactly_once(&f, &[0]);
    assert_eq!(events_for(&slow, id, "resolved"), 1);
    assert_eq!(events_for(&steady, id, "resolved"), 1);
    let hung = slow.got().iter().filter(|g| g.answered == 0).count();
    let failed = slow.got().iter().filter(|g| g.answered == 500).count();
    let keys: BTreeSet<String> = slow
        .got()
        .iter()
        .filter(|g| g.incident == id as u64 && g.event == "firing")
        .map(|g| g.key.clone())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "every retry of one delivery carries one key: {keys:?}"
    );
    let retries = a.log_lines("will retry");
    println!(
        "figures: fault=webhook-hang-500-recover hung={hung} answered_500={failed} \
         lost={} duplicated={} deliveries={} delivered_after_recovery_ms={} retry_log_lines={}",
        f.lost,
        f.duplicated,
        f.delivered_rows,
        took.as_millis(),
        retries.len()
    );
    if let Some(line) = retries.first() {
        println!("operator saw: {line}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_restarted_with_a_new_certificate() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let mut a = bench.collector("collector-a", &hooks, "").await?;
    let n = hosts();
    let load = Load::start(bench.fleet.clone(), vec![a.addr], n, INTERVAL);
    let mut agent = bench.real_agent(&[a.addr])?;
    load.set(0, Phase::Down);
    opens(&bench, 0).await?;
    reporting(&agent, &mut bench.db().await?, REAL).await?;
    let (cert, _) = gw502_pki::leaf_paths(&bench.fleet.pki(), Role::Collector, "collector");
    let old = std::fs::read(&cert)?;
    a.signal(Signal::SIGTERM)?;
    let status = a.wait_exit(WAIT).await?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    // Counted with no collector up: a report stored later went through the
    // restarted one, under its new certificate.
    let real_before = stored_seqs(&mut bench.db().await?, REAL).await?.0.len();
    gw502_pki::issue(
        &bench.fleet.pki(),
        Role::Collector,
        "collector",
        &["localhost".into(), "127.0.0.1".into()],
    )?;
    assert_ne!(std::fs::read(&cert)?, old, "a new certificate");
    load.set(1, Phase::Down);
    a.restart().await?;
    let restarted = Instant::now();
    opens(&bench, 1).await?;
    until("every agent reports again", async || {
        let hosts: BTreeSet<String> = load
            .acks()
            .iter()
            .filter(|x| x.at > restarted)
            .map(|x| x.host.clone())
            .collect();
        Ok((hosts.len() == n).then_some(()))
    })
    .await?;
    let back = first_ack_after(&load.acks(), restarted);
    settle(&bench, &load, &[0, 1]).await?;
    let acks = load.stop().await?;
    let mut db = bench.db().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &[0, 1]);
    let real = drained_once(&mut agent, &mut db, REAL, real_before).await?;
    println!(
        "figures: fault=new-certificate hosts={n} reports={} lost={} duplicated={} incidents={} \
         deliveries={} agents_back_after_restart_ms={} {}",
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.fault_incidents.values().sum::<usize>(),
        f.delivered_rows,
        back.as_millis(),
        real.figures(),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_hands_over() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let hook = Receiver::start().await?;
    let hooks = [("ops", hook.url())];
    let mut a = bench.collector("collector-a", &hooks, "").await?;
    let b = bench.collector("collector-b", &hooks, "").await?;
    let n = hosts();
    let load = Load::start(bench.fleet.clone(), vec![a.addr, b.addr], n, INTERVAL);
    let mut agent = bench.real_agent(&[a.addr, b.addr])?;
    let mut db = bench.db().await?;
    until("every site leased", async || {
        Ok((site_lease_holders(&mut db).await?.len() == n).then_some(()))
    })
    .await?;
    reporting(&agent, &mut db, REAL).await?;
    // A bad file: both problems are logged, the running config stays.
    let good = std::fs::read_to_string(&a.config)?;
    std::fs::write(
        &a.config,
        format!("bogus_key = 1\n{good}\n[[sites]]\nurl = \"ftp://nowhere\"\n"),
    )?;
    a.signal(Signal::SIGHUP)?;
    until("the refusal is logged", async || {
        Ok((!a.log_lines("config reload refused").is_empty()).then_some(()))
    })
    .await?;
    let problems = a.log_lines("config problem");
    assert!(
        problems.iter().any(|l| l.contains("bogus_key"))
            && problems.iter().any(|l| l.contains("sites[0].url")),
        "every problem logged: {problems:?}"
    );
    // A good file with a new site: put in force without a restart.
    std::fs::write(
        &a.config,
        format!("{good}\n[[sites]]\nurl = \"http://reloaded.example/\"\n"),
    )?;
    a.signal(Signal::SIGHUP)?;
    until("the reloaded site is published", async || {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sites WHERE name = 'reloaded.example'")
            .fetch_one(&mut db)
            .await?;
        let reloaded = !a.log_lines("config reloaded").is_empty();
        Ok((row.try_get::<i64, _>("n")? == 1 && reloaded).then_some(()))
    })
    .await?;
    // SIGTERM under load: A drains, exits 0 and gives its leases back.
    load.set(0, Phase::Down);
    opens(&bench, 0).await?;
    let real_before = stored_seqs(&mut db, REAL).await?.0.len();
    a.signal(Signal::SIGTERM)?;
    let status = a.wait_exit(WAIT).await?;
    let stopped = Instant::now();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        !a.log_lines("site leases released").is_empty(),
        "{}",
        a.log_text()
    );
    let handed = until("collector-b holds every site", async || {
        let holders = site_lease_holders(&mut db).await?;
        Ok(
            (holders.len() >= n && holders.values().all(|h| h == "collector-b"))
                .then(|| stopped.elapsed()),
        )
    })
    .await?;
    settle(&bench, &load, &[0]).await?;
    let acks = load.stop().await?;
    let f = figures(&mut db, &acks, &[("ops", &hook)]).await?;
    assert_exactly_once(&f, &[0]);
    let real = drained_once(&mut agent, &mut db, REAL, real_before).await?;
    assert!(
        real.switches >= 1.0,
        "the real agent went over to collector-b: {real:?}"
    );
    println!(
        "figures: fault=sigterm+sighup hosts={n} reports={} lost={} duplicated={} deliveries={} \
         leases_handed_over_ms={} {}",
        f.reports_acked,
        f.lost,
        f.duplicated,
        f.delivered_rows,
        handed.as_millis(),
        real.figures(),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_drains_on_sigterm_and_exits_0() -> anyhow::Result<()> {
    let Some(bench) = Bench::start().await? else {
        return Ok(());
    };
    let a = bench.collector("collector-a", &[], "").await?;
    let b = bench.collector("collector-b", &[], "").await?;
    let (cert, key) = bench.fleet.issue(Role::Agent, "real1")?;
    let state = bench.fleet.path().join("agent-state");
    let config = bench.fleet.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "host_id = \"real1\"\ncollectors = [\"https://{}\", \"https://{}\"]\n\
             interval = \"1s\"\nstate_dir = \"{}\"\nshutdown_grace = \"5s\"\n\
             [tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            a.addr,
            b.addr,
            state.display(),
            bench.fleet.pki().join("ca.crt").display(),
            cert.display(),
            key.display()
        ),
    )?;
    let log = bench.fleet.path().join("agent.log");
    let mut agent =
        std::process::Command::new(gw502_tests::scenario::agent::workspace_bin("gw502-agent")?)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
    let mut db = bench.db().await?;
    let stored = async |db: &mut sqlx::AnyConnection| -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM reports WHERE host_id = 'real1'")
            .fetch_one(db)
            .await?;
        Ok(row.try_get("n")?)
    };
    until("the agent's reports are stored", async || {
        Ok((stored(&mut db).await? >= 2).then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}: {}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        Signal::SIGTERM,
    )?;
    let status = until("the agent exits", async || Ok(agent.try_wait()?)).await?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    let text = std::fs::read_to_string(&log)?;
    let stopped: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("agent stopped"))
        .collect();
    assert_eq!(stopped.len(), 1, "{text}");
    // Nothing waits in the spool: every report it made is stored, once.
    assert!(stopped[0].contains("waiting=0"), "{}", stopped[0]);
    let rows = sqlx::query("SELECT seq FROM reports WHERE host_id = 'real1' ORDER BY seq")
        .fetch_all(&mut db)
        .await?;
    let seqs: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("seq"))
        .collect::<Result<_, _>>()?;
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "every report from 1 on, once");
    println!(
        "figures: fault=agent-sigterm reports={} lost=0 duplicated=0 exit={status}",
        seqs.len()
    );
    println!("operator saw: {}", stopped[0]);
    Ok(())
}
