//! The store's error type: every failure names the database (password
//! redacted) or the operation that failed, so a dead or misconfigured database
//! reads as one clear line in the collector's log.

/// An error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend the store knows.
    #[error("database {url}: {reason}")]
    InvalidUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The database could not be reached or opened.
    #[error("database {url}: {source}")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database did not answer in time.
    #[error("database {url}: no connection within {after:?}")]
    ConnectTimeout {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The time waited.
        after: std::time::Duration,
    },
    /// The lock that keeps two collectors from migrating one SQLite file at
    /// once could not be taken.
    #[error("database {url}: cannot lock {path} for migrations: {source}")]
    MigrationLock {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The lock file beside the database.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("database {url}: migrations: {source}")]
    Migrate {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed (connection lost, constraint, decode).
    #[error("database {backend} {op}: {source}")]
    Query {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The store operation, as in the `op` label of `gw502_db_seconds`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// No incident has this id.
    #[error("no incident {id}")]
    NoSuchIncident {
        /// The id asked for.
        id: i64,
    },
    /// A value does not fit the column it is stored in.
    #[error("{field} out of range: {value}")]
    OutOfRange {
        /// The field of the input row.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The report writer stopped: the collector is shutting down.
    #[error("the report writer has stopped")]
    Closed,
}
