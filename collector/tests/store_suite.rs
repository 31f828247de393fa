//! The store's shared test suite, quickwit metastore-suite style: every test is
//! a generic async fn over a [`TestDb`], and `store_suite!` instantiates it once
//! against SQLite (a fresh file in a temp dir, always) and once against
//! PostgreSQL when `GW502_TEST_DATABASE_URL` is set (`.ci/postgres.sh` prints
//! one). Each PostgreSQL test gets its own schema via `search_path`, so tests
//! run in parallel without seeing each other's rows.

#[path = "store_suite/incidents.rs"]
mod incidents;
#[path = "store_suite/operations.rs"]
mod operations;
#[path = "store_suite/reports.rs"]
mod reports;
#[path = "store_suite/scopes.rs"]
mod scopes;
#[path = "store_suite/sharing.rs"]
mod sharing;

use std::time::{Duration, Instant};

use gw502_collector::store::{Backend, IncidentFilter, Store, StoreError};

use reports::report;

const DAY_MS: i64 = 86_400_000;

/// A database for one test: connect any number of stores to `url`.
struct TestDb {
    url: String,
    admin: Option<(sqlx::PgPool, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        // A plain path: the store must turn it into a SQLite URL that creates the file.
        let url = dir.path().join("collector.db").to_str().unwrap().to_owned();
        TestDb {
            url,
            admin: None,
            _dir: Some(dir),
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let base = std::env::var("GW502_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap();
        let schema = format!("suite_{test}");
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(TestDb {
            url,
            admin: Some((admin, schema)),
            _dir: None,
        })
    }

    async fn store(&self) -> Store {
        Store::connect(&self.url).await.unwrap()
    }

    async fn drop_schema(self) {
        if let Some((admin, schema)) = self.admin {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
        }
    }
}

macro_rules! store_suite {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = super::TestDb::sqlite();
                    assert_eq!(db.store().await.backend(), super::Backend::Sqlite);
                    super::$module::$test(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(db) = super::TestDb::postgres(stringify!($test)).await else {
                        eprintln!("GW502_TEST_DATABASE_URL not set: postgres suite not run");
                        return;
                    };
                    assert_eq!(db.store().await.backend(), super::Backend::Postgres);
                    super::$module::$test(&db).await;
                    db.drop_schema().await;
                }
            )*
        }
    };
}

store_suite!(
    reports::report_insert_is_idempotent,
    reports::host_row_follows_newest_report,
    reports::report_batch_matches_one_by_one,
    reports::site_hosts_are_added_atomically,
    reports::reports_since_orders_by_generated_then_seq,
    reports::state_reports_start_at_the_newest_full_snapshot,
    reports::sites_and_observations_round_trip,
    reports::cross_probes_land_with_their_report,
    incidents::incidents_dedup_by_key,
    incidents::concurrent_upserts_open_one_incident,
    incidents::resolved_key_opens_a_new_incident,
    incidents::good_and_bad_counters,
    incidents::causes_of_one_host_resolve_apart,
    incidents::incident_filters,
    incidents::change_feed_spans_stores,
    operations::leases_exclude_other_holders,
    operations::deliveries_log,
    operations::prune_keeps_open_incidents_and_last_full_report,
    scopes::site_scopes_restrict_incidents_and_deliveries,
    sharing::site_leases_are_compare_and_set,
    sharing::racing_claims_give_one_holder,
    sharing::deliveries_are_written_with_the_change,
    sharing::a_dead_senders_claim_expires_with_the_same_key,
    sharing::a_retry_waits_for_its_backoff,
    sharing::concurrent_senders_claim_each_row_once,
    operations::served_units_keep_the_latest_sighting_and_are_pruned,
);

#[tokio::test]
async fn memory_database_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.ping().await.unwrap();
    store
        .insert_report(&report("web1", "i1", 1, 1_000, true))
        .await
        .unwrap();
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn dead_postgres_fails_fast_without_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = Instant::now();
    let err = Store::connect(&format!("postgres://gw502:s3cret@127.0.0.1:{port}/gw502"))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{msg}");
    assert!(
        msg.contains(&format!("gw502:***@127.0.0.1:{port}")),
        "{msg}"
    );
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[tokio::test]
async fn silent_postgres_times_out_in_bounded_time() {
    // Accepts TCP (the kernel completes the handshake) but never speaks PostgreSQL.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let err = Store::connect(&format!("postgres://gw502:s3cret@127.0.0.1:{port}/gw502"))
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= gw502_collector::store::CONNECT_TIMEOUT,
        "{elapsed:?}"
    );
    assert!(
        elapsed < gw502_collector::store::CONNECT_TIMEOUT + Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(matches!(err, StoreError::ConnectTimeout { .. }), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    drop(listener);
}

#[tokio::test]
async fn unusable_sqlite_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("x.db");
    let err = Store::connect(path.to_str().unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("missing-dir"), "{err}");
    let err = Store::connect("mysql://db/x").await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err}");
}

#[tokio::test]
async fn closed_store_reports_the_operation() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    store.close().await;
    let err = store
        .list_incidents(&IncidentFilter::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("list_incidents"), "{err}");
}

#[tokio::test]
async fn postgres_with_sslmode_require_speaks_tls() {
    let Some(db) = TestDb::postgres("tls").await else {
        eprintln!("GW502_TEST_DATABASE_URL not set: postgres TLS test not run");
        return;
    };
    let url = format!("{}&sslmode=require&application_name=gw502_tls_test", db.url);
    let store = Store::connect(&url).await.unwrap();
    store.ping().await.unwrap();
    let (admin, _) = db.admin.as_ref().unwrap();
    let encrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
         WHERE a.application_name = 'gw502_tls_test' AND s.ssl",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    assert!(encrypted > 0, "no TLS connection from the store");
    store.close().await;
    db.drop_schema().await;
}
