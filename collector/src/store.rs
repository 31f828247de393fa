//! The collector's storage: agent reports and hosts, sites, edge observations,
//! incidents with their verdict history and change feed, the
//! delivery log of notifications (an outbox senders claim), leases and
//! retention.
//!
//! One [`Store`] speaks to embedded SQLite (the default: a file created if
//! missing, WAL, `busy_timeout`, foreign keys on) or to PostgreSQL given a
//! `postgres://` URL, which several collectors may share. It is built on
//! `sqlx::AnyPool`: every query is written once in the SQL both backends
//! accept (`$N` placeholders, `ON CONFLICT … DO …`, `RETURNING`, `BIGINT`
//! times), so a second code path per backend is not needed. The few places
//! that differ branch on [`Backend`]. On a SQLite file, writes go through a
//! pool of one connection, so this process's writers queue in order rather
//! than polling the lock in SQLite's busy handler (whose sleeps of up to
//! 100 ms made the ingest tail), and transactions start with `BEGIN
//! IMMEDIATE`, so another process's writer makes them wait on
//! `busy_timeout` instead of failing a lock upgrade. On PostgreSQL the
//! change feed takes a transaction advisory lock just before the change row
//! is written, so change ids are assigned in commit order and a reader's
//! cursor never skips a late commit. Any's type set (integers, floats, text,
//! bytes) is enough: booleans are stored as 0/1
//! and lists/maps as JSON text.
//!
//! Schemas are numbered migrations per backend in `migrations/{sqlite,postgres}`,
//! embedded with `sqlx::migrate!` and applied by [`Store::connect`]. Long
//! queries live in `queries/*.sql`. Every operation records its latency in the
//! histogram `gw502_db_seconds` labelled `op`.

/// The columns of `incidents` read into an `IncidentRow`, as one literal.
macro_rules! incident_columns {
    () => {
        "id, site, host, layer, cause, state, status, emitted_by, owner, confidence, summary, \
         next_check, verdict, opened_at_ms, updated_at_ms, last_seen_at_ms, resolved_at_ms, \
         good_observations, bad_observations"
    };
}

/// The columns of `reports` an agent's report fills, as one literal.
macro_rules! report_fields {
    () => {
        "host_id, agent_instance, seq, agent_version, generated_at_ms, received_at_ms, \
         replayed, full_snapshot, interval_ms, spool_dropped, addresses, body"
    };
}

/// The columns of `hosts`, as one literal.
macro_rules! host_columns {
    () => {
        "host_id, first_seen_ms, last_seen_ms, last_generated_at_ms, agent_version, \
         agent_instance, interval_ms, addresses, spool_dropped, report_count"
    };
}

mod error;
mod incident_queries;
mod incidents;
mod leases;
mod maintenance;
mod outbox;
mod report_batch;
mod reports;
mod served;
mod types;
mod url;
mod wire;

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row, Transaction};

pub use error::StoreError;
pub use incidents::Routes;
pub use leases::LeaseClaim;
pub use outbox::{AttemptOutcome, ClaimedDelivery, Outgoing};
pub use report_batch::MAX_BATCH;
pub use served::ServedRow;
pub use types::{
    Change, DeliveryRow, HistoryRow, HostRow, IncidentFilter, IncidentRow, IncidentUpsert,
    InsertOutcome, NewDelivery, NewReport, ObservationRow, PruneStats, SiteRow, StoredReport,
};

/// How long connecting (and later, waiting for a pooled connection) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows `list_incidents` returns when the filter gives no limit.
pub const DEFAULT_LIST_LIMIT: u32 = 1000;
/// The most rows any list query returns.
pub const MAX_LIST_LIMIT: u32 = 10_000;

/// Applied to every SQLite connection as it opens.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL, possibly shared by several collectors.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to the collector's database with its schema applied.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL and in-memory SQLite, writes).
    pool: AnyPool,
    /// Writes: on a SQLite file one connection, so writers queue in order.
    writer: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the database at `url` and applies the migrations.
    ///
    /// `url` is `sqlite:///path/x.db`, `sqlite::memory:`, a plain file path
    /// (SQLite, created if missing) or `postgres://…`. Fails within
    /// [`CONNECT_TIMEOUT`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let redacted = url::redact(url);
        let (backend, sqlx_url) = url::normalize(url).ok_or_else(|| StoreError::InvalidUrl {
            url: redacted.clone(),
            reason: "expected sqlite:…, postgres://… or a file path",
        })?;
        sqlx::any::install_default_drivers();
        let memory = sqlx_url.starts_with("sqlite::memory:");
        let options = match backend {
            Backend::Postgres => pool_options().max_connections(8),
            // Every connection would see its own empty database: keep exactly one, forever.
            Backend::Sqlite if memory => sqlite_options()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            Backend::Sqlite => sqlite_options().max_connections(4),
        };
        if backend == Backend::Postgres {
            // One direct connection first: the pool would turn "connection refused"
            // or a bad password into a bare "pool timed out".
            let probe = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(&sqlx_url))
                .await
                .map_err(|_| StoreError::ConnectTimeout {
                    url: redacted.clone(),
                    after: CONNECT_TIMEOUT,
                })?
                .map_err(|source| StoreError::Connect {
                    url: redacted.clone(),
                    source,
                })?;
            // A failed goodbye on a connection that just worked changes nothing.
            let _ = probe.close().await;
        }
        let connect_failed = |source| StoreError::Connect {
            url: redacted.clone(),
            source,
        };
        let pool = options.connect(&sqlx_url).await.map_err(connect_failed)?;
        // sqlx takes no migration lock on SQLite: two collectors starting on one
        // fresh file would both create the schema. A file lock beside it, held
        // until the migrations are done, makes the second wait and find them applied.
        let _migrating = match url::sqlite_file(&sqlx_url) {
            Some(db) => Some(lock_beside(&db).await.map_err(|(path, source)| {
                StoreError::MigrationLock {
                    url: redacted.clone(),
                    path,
                    source,
                }
            })?),
            None => None,
        };
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: redacted.clone(),
                source,
            })?;
        // SQLite has one writer: writes queue for a single connection in
        // order, instead of polling the lock in SQLite's busy handler.
        let writer = match backend {
            Backend::Sqlite if !memory => sqlite_options()
                .max_connections(1)
                .connect(&sqlx_url)
                .await
                .map_err(connect_failed)?,
            _ => pool.clone(),
        };
        tracing::debug!(url = %redacted, backend = backend.as_str(), "store connected");
        Ok(Store {
            pool,
            writer,
            backend,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", async {
            self.pool.execute("SELECT 1").await.map(|_| ())
        })
        .await
    }

    /// Closes the pool; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }

    /// Runs `fut`, records its latency under `op` and names `op` in its error.
    async fn timed<T, F>(&self, op: &'static str, fut: F) -> Result<T, StoreError>
    where
        F: Future<Output = sqlx::Result<T>>,
    {
        let start = Instant::now();
        let result = fut.await;
        metrics::histogram!("gw502_db_seconds", "op" => op).record(start.elapsed().as_secs_f64());
        result.map_err(|source| StoreError::Query {
            backend: self.backend.as_str(),
            op,
            source,
        })
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite takes the write
    /// lock up front (waiting on `busy_timeout`), plain `BEGIN` on PostgreSQL.
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => match self.writer.begin_with("BEGIN IMMEDIATE").await {
                // A COMMIT that failed (SQLITE_FULL: the disk is full) leaves the
                // connection counting a transaction that SQLite already rolled
                // back, and every later BEGIN on it fails. Throw it away; the
                // pool opens a fresh one.
                Err(sqlx::Error::InvalidSavePointStatement) => {
                    tracing::warn!(
                        "sqlite writer connection stuck after a failed commit, reopening it"
                    );
                    drop(self.writer.acquire().await?.detach());
                    self.writer.begin_with("BEGIN IMMEDIATE").await
                }
                begun => begun,
            },
            Backend::Postgres => self.writer.begin().await,
        }
    }
}

/// `value` as a BIGINT column, or an error naming `field`.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT)
}

fn sqlite_options() -> AnyPoolOptions {
    pool_options().after_connect(|conn, _meta| {
        Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) })
    })
}

fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        field,
        value: value.to_string(),
    })
}

/// Column `name` of `row` as an unsigned integer of type `T`.
fn get_unsigned<T: TryFrom<i64>>(row: &AnyRow, name: &str) -> sqlx::Result<T> {
    let value: i64 = row.try_get(name)?;
    T::try_from(value).map_err(|_| sqlx::Error::ColumnDecode {
        index: name.to_owned(),
        source: format!("{value} out of range").into(),
    })
}

/// Column `name` of `row` as a 0/1 flag.
fn get_flag(row: &AnyRow, name: &str) -> sqlx::Result<bool> {
    let value: i64 = row.try_get(name)?;
    Ok(value != 0)
}

/// Column `name` of `row`, JSON text, decoded.
fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> sqlx::Result<T> {
    let text: String = row.try_get(name)?;
    serde_json::from_str(&text).map_err(|err| sqlx::Error::ColumnDecode {
        index: name.to_owned(),
        source: Box::new(err),
    })
}

/// `value` as JSON text for a TEXT column.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Takes an exclusive lock on `<db>.migrate-lock`, waiting for another
/// process that holds it; released when the returned guard drops.
async fn lock_beside(
    db: &std::path::Path,
) -> Result<nix::fcntl::Flock<std::fs::File>, (std::path::PathBuf, std::io::Error)> {
    let mut name = db.as_os_str().to_owned();
    name.push(".migrate-lock");
    let path = std::path::PathBuf::from(name);
    let at = path.clone();
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&at)?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| std::io::Error::from(errno))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    locked.map_err(|e| (path, e))
}
