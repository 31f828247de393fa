//! Seeds a store with many incidents and measures the two
//! list queries operators run most: open incidents (the default view) and all
//! incidents updated in the last 30 days. Prints a markdown table of p50/p99.
//!
//! SQLite (a temp file) always; PostgreSQL too when `GW502_TEST_DATABASE_URL`
//! is set (the bench uses, and drops, the schema `bench_store_query`). Scale
//! with `GW502_BENCH_INCIDENTS` (default 1,000,000). Seeding is one
//! set-based INSERT (a recursive CTE on
//! SQLite, `generate_series` on PostgreSQL), so it needs no client loop.
//!
//! Run: `cargo bench -p gw502-collector --bench store_query`.

use std::time::{Duration, Instant};

use gw502_collector::store::{IncidentFilter, Store};
use sqlx::Executor;

const DAY_MS: i64 = 86_400_000;
const NOW_MS: i64 = 1_000 * DAY_MS;
const ROUNDS: usize = 50;

/// `n` numbered rows: a recursive CTE on SQLite, generate_series on PostgreSQL.
fn series(postgres: bool, n: i64) -> String {
    if postgres {
        format!("(SELECT n FROM generate_series(1::bigint, {n}) AS g(n)) s")
    } else {
        format!(
            "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) SELECT n FROM g) s"
        )
    }
}

/// Incident n: 1% open, updated over the last 1,000 days.
fn seed_sql(postgres: bool, incidents: i64) -> [String; 1] {
    let text = |expr: &str| {
        if postgres {
            format!("({expr})::text")
        } else {
            format!("CAST({expr} AS TEXT)")
        }
    };
    let blob = if postgres { "'\\x00'::bytea" } else { "X'00'" };
    let incidents_sql = format!(
        "INSERT INTO incidents (site, host, layer, cause, state, status, emitted_by, owner, confidence, \
         summary, next_check, verdict, opened_at_ms, updated_at_ms, last_seen_at_ms, resolved_at_ms, \
         good_observations, bad_observations) \
         SELECT 'site' || {site}, 'web1', 'handoff', 'cause' || {n}, \
         CASE WHEN s.n % 100 = 0 THEN 'open' ELSE 'resolved' END, 502, 'proxy', 'platform', 0.9, \
         'summary', 'next', {blob}, {upd} - 60000, {upd}, {upd}, \
         CASE WHEN s.n % 100 = 0 THEN NULL ELSE {upd} END, 0, 0 FROM {series}",
        site = text("s.n % 50"),
        n = text("s.n"),
        upd = format!("({NOW_MS} - (s.n * 86400) % {})", DAY_MS * 1000),
        series = series(postgres, incidents),
    );
    [incidents_sql]
}

async fn bench(name: &str, url: &str, postgres: bool, incidents: i64) -> Vec<String> {
    let store = Store::connect(url).await.expect("connect");
    let seeding = Instant::now();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&seed_url(url))
        .await
        .expect("seed connection");
    for sql in seed_sql(postgres, incidents) {
        conn.execute(sql.as_str()).await.expect("seed");
    }
    conn.execute("ANALYZE").await.expect("analyze");
    eprintln!(
        "{name}: seeded {incidents} incidents in {:?}",
        seeding.elapsed()
    );
    let mut lines = Vec::new();
    for (label, filter) in [
        ("open (default)", IncidentFilter::default()),
        (
            "all, since 30d",
            IncidentFilter {
                all: true,
                since_ms: Some(NOW_MS - 30 * DAY_MS),
                ..Default::default()
            },
        ),
    ] {
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        let mut rows = 0;
        for _ in 0..ROUNDS {
            let start = Instant::now();
            rows = store.list_incidents(&filter).await.expect("list").len();
            times.push(start.elapsed());
        }
        times.sort();
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        lines.push(format!(
            "| {name} | {label} | {rows} | {:.1} | {:.1} |",
            ms(p(0.5)),
            ms(p(0.99))
        ));
    }
    lines
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn seed_url(url: &str) -> String {
    if url.starts_with("postgres") {
        url.to_owned()
    } else {
        format!("sqlite://{url}?mode=rw")
    }
}

#[tokio::main]
async fn main() {
    let incidents: i64 = std::env::var("GW502_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let mut lines = bench(
        "sqlite",
        path.to_str().expect("utf-8 path"),
        false,
        incidents,
    )
    .await;
    if let Some(base) = std::env::var("GW502_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .expect("admin");
        admin
            .execute("DROP SCHEMA IF EXISTS bench_store_query CASCADE")
            .await
            .expect("drop");
        admin
            .execute("CREATE SCHEMA bench_store_query")
            .await
            .expect("create");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3Dbench_store_query");
        lines.extend(bench("postgres", &url, true, incidents).await);
        admin
            .execute("DROP SCHEMA bench_store_query CASCADE")
            .await
            .expect("drop");
    }
    println!("{incidents} incidents, {ROUNDS} rounds\n");
    println!("| backend | list_incidents | rows | p50 ms | p99 ms |\n|---|---|---|---|---|");
    for line in lines {
        println!("{line}");
    }
}
