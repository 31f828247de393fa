//! Collector ingest under load: simulated agents over real mTLS against the
//! real `gw502-collector` binary (a child process), on SQLite and, when
//! `GW502_TEST_DATABASE_URL` is set, PostgreSQL (schema `bench_ingest_load`,
//! dropped afterwards). Prints one markdown row per (backend, agent count):
//! offered and acknowledged reports/s, p50/p99/max ingest latency as the
//! agent sees it, refusals by gRPC code, and the collector's CPU and RSS.
//!
//! Knobs: `GW502_BENCH_AGENTS` (comma list, default `2000`),
//! `GW502_BENCH_INTERVAL_MS` (default 10000, the agent's default interval),
//! `GW502_BENCH_SECONDS` (measured window after one warm-up interval, default
//! 30), `GW502_BENCH_BACKENDS` (default `sqlite,postgres`).
//!
//! Each simulated host has its own certificate and connection, so the count is
//! capped by the 20,000 open files a process may hold here (the collector
//! needs one per agent); use a shorter interval to offer more reports/s.
//!
//! Run: `cargo bench -p gw502-collector --bench ingest_load`.

mod agents;
mod fleet;

use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::Executor;

const SCHEMA: &str = "bench_ingest_load";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let counts: Vec<usize> = env_or("GW502_BENCH_AGENTS", "2000")
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()?;
    let interval = Duration::from_millis(env_or("GW502_BENCH_INTERVAL_MS", "10000").parse()?);
    let seconds = Duration::from_secs(env_or("GW502_BENCH_SECONDS", "30").parse()?);
    let backends = env_or("GW502_BENCH_BACKENDS", "sqlite,postgres");
    let postgres = std::env::var("GW502_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let work = tempfile::tempdir()?;
    let pki = work.path().join("pki");
    fleet::init_pki(&pki)?;
    let ca = std::fs::read_to_string(pki.join("ca.crt"))?;
    let max = counts.iter().copied().max().unwrap_or(0);
    let issuing = Instant::now();
    let creds = fleet::agent_credentials(&pki, max)?;
    eprintln!(
        "issued {max} agent certificates in {:.1?}",
        issuing.elapsed()
    );
    let mut rows = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        for &count in &counts {
            let database = match (backend, &postgres) {
                ("sqlite", _) => {
                    let path = work.path().join(format!("ingest-{count}.db"));
                    format!("sqlite://{}", path.display())
                }
                ("postgres", Some(base)) => fresh_schema(base).await?,
                _ => continue,
            };
            let row = run_one(
                backend,
                &database,
                work.path(),
                &pki,
                &ca,
                &creds[..count],
                interval,
                seconds,
            )
            .await?;
            eprintln!("{row}");
            rows.push(row);
        }
    }
    if let Some(base) = &postgres {
        drop_schema(base).await?;
    }
    println!(
        "interval {} ms, window {} s after one warm-up interval\n",
        interval.as_millis(),
        seconds.as_secs()
    );
    println!(
        "| backend | agents | offered/s | acked/s | p50 ms | p99 ms | max ms | refused | collector CPU % | collector RSS max MB | loadgen CPU % | machine CPU % (of 200) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

/// Drops the bench schema if a previous run left it; returns the admin pool.
async fn drop_schema(base: &str) -> anyhow::Result<sqlx::PgPool> {
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(base)
        .await?;
    admin
        .execute(format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE").as_str())
        .await?;
    Ok(admin)
}

async fn fresh_schema(base: &str) -> anyhow::Result<String> {
    let admin = drop_schema(base).await?;
    admin
        .execute(format!("CREATE SCHEMA {SCHEMA}").as_str())
        .await?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-c%20search_path%3D{SCHEMA}"))
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    backend: &str,
    database: &str,
    work: &std::path::Path,
    pki: &std::path::Path,
    ca: &str,
    creds: &[fleet::Credentials],
    interval: Duration,
    seconds: Duration,
) -> anyhow::Result<String> {
    let collector = fleet::Collector::start(work, pki, database)?;
    let addr = collector.addr;
    let connecting = Instant::now();
    let clients: Vec<_> = futures::stream::iter(creds.iter())
        .map(|c| agents::connect(addr, ca, c))
        .buffered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    eprintln!(
        "{backend}: {} agents connected in {:.1?}",
        creds.len(),
        connecting.elapsed()
    );
    let count = creds.len();
    let first_tick = Instant::now() + Duration::from_millis(500);
    let start = first_tick + interval;
    let window = agents::Window {
        start,
        end: start + seconds,
    };
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(agents::run(client, i, count, interval, window, first_tick))
        })
        .collect();
    let pid = collector.pid();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let before = (
            cpu_ticks(&format!("/proc/{pid}/stat")),
            cpu_ticks("/proc/self/stat"),
            machine_busy_ticks(),
        );
        let mut rss_max = 0u64;
        while Instant::now() < window.end {
            rss_max = rss_max.max(rss_kb(pid));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let after = (
            cpu_ticks(&format!("/proc/{pid}/stat")),
            cpu_ticks("/proc/self/stat"),
            machine_busy_ticks(),
        );
        (
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            rss_max,
        )
    });
    let mut latencies = Vec::new();
    let mut refused: std::collections::BTreeMap<String, u64> = Default::default();
    let mut sent = 0;
    for task in tasks {
        let tally = task.await?;
        latencies.extend(tally.latencies_us);
        sent += tally.sent;
        for (code, message) in tally.refused {
            *refused.entry(format!("{code}: {message}")).or_default() += 1;
        }
    }
    let (collector_ticks, loadgen_ticks, machine_ticks, rss_max) = sampler.await?;
    let show = |rows: Vec<fleet::Timing>| {
        rows.iter()
            .take(5)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    eprintln!(
        "{backend} {count}: database time by op: {}",
        show(collector.histogram("gw502_db_seconds", "op")?)
    );
    eprintln!(
        "{backend} {count}: evaluation passes: {}",
        show(collector.histogram("gw502_collector_evaluation_seconds", "pass")?)
    );
    drop(collector);
    latencies.sort_unstable();
    let p = |q: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * q) as usize)
            .map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    };
    let secs = seconds.as_secs_f64();
    let refused = if refused.is_empty() {
        "0".to_owned()
    } else {
        refused
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Ok(format!(
        "| {backend} | {count} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {refused} | {:.0} | {:.0} | {:.0} | {:.0} |",
        sent as f64 / secs,
        latencies.len() as f64 / secs,
        p(0.5),
        p(0.99),
        p(1.0),
        collector_ticks as f64 / secs,
        rss_max as f64 / 1024.0,
        loadgen_ticks as f64 / secs,
        machine_ticks as f64 / secs,
    ))
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(stat: &str) -> i64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let after_comm = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<i64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Busy clock ticks of the whole machine at normal priority (PostgreSQL included).
fn machine_busy_ticks() -> i64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<i64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait …: busy is all but nice (other people's
    // background jobs at nice 19 yield to the bench), idle and iowait
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    fields.iter().sum::<i64>() - at(1) - at(3) - at(4)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
