//! Leases that give one collector at a time a piece of work (a site's probes
//! and evaluation) when several share a database.
//!
//! A lease is a row `(name, holder, expires_at_ms)`. [`Store::claim_lease`]
//! is a compare-and-set in one write transaction: it reads the row (locked
//! with `FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds
//! the only write lock), decides, and writes only if the row is still what it
//! read. Expiry is judged by the database's clock, never the collectors', so
//! two collectors whose clocks disagree still agree on who holds a lease.

use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreError};

/// What [`Store::claim_lease`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseClaim {
    /// The lease was free (never taken, or released) and is now ours.
    Acquired,
    /// It was ours and is renewed.
    Renewed,
    /// Another holder stopped renewing it; it is ours now.
    TakenOver {
        /// The holder whose lease expired.
        from: String,
    },
    /// Another holder has it and keeps renewing it.
    HeldBy {
        /// The current holder.
        holder: String,
    },
}

impl LeaseClaim {
    /// Whether the caller holds the lease after the claim.
    pub fn held(&self) -> bool {
        !matches!(self, LeaseClaim::HeldBy { .. })
    }
}

impl Store {
    /// Takes, renews or takes over the lease `name` for `holder` until the
    /// database's now plus `ttl_ms`; see [`LeaseClaim`].
    pub async fn claim_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<LeaseClaim, StoreError> {
        self.timed("claim_lease", async {
            let mut tx = self.begin_write().await?;
            let now = db_now(self.backend, &mut tx).await?;
            let until = now.saturating_add(ttl_ms);
            let select = match self.backend {
                Backend::Postgres => {
                    "SELECT holder, expires_at_ms FROM leases WHERE name = $1 FOR UPDATE"
                }
                Backend::Sqlite => "SELECT holder, expires_at_ms FROM leases WHERE name = $1",
            };
            let current = sqlx::query(select)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| -> sqlx::Result<(String, i64)> {
                    Ok((row.try_get("holder")?, row.try_get("expires_at_ms")?))
                })
                .transpose()?;
            let claim = match current {
                None => {
                    // Two claimers may both find no row: the insert decides.
                    let won = sqlx::query(
                        "INSERT INTO leases (name, holder, expires_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING RETURNING holder",
                    )
                    .bind(name)
                    .bind(holder)
                    .bind(until)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match won {
                        Some(_) => LeaseClaim::Acquired,
                        None => LeaseClaim::HeldBy {
                            holder: current_holder(&mut tx, name).await?,
                        },
                    }
                }
                Some((current, expires)) => {
                    let free = current.is_empty();
                    if current != holder && !free && expires > now {
                        LeaseClaim::HeldBy { holder: current }
                    } else {
                        let swapped = sqlx::query(
                            "UPDATE leases SET holder = $2, expires_at_ms = $3 \
                             WHERE name = $1 AND holder = $4 AND expires_at_ms = $5",
                        )
                        .bind(name)
                        .bind(holder)
                        .bind(until)
                        .bind(&current)
                        .bind(expires)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if swapped == 0 {
                            LeaseClaim::HeldBy {
                                holder: current_holder(&mut tx, name).await?,
                            }
                        } else if current == holder {
                            LeaseClaim::Renewed
                        } else if free {
                            LeaseClaim::Acquired
                        } else {
                            LeaseClaim::TakenOver { from: current }
                        }
                    }
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
        .await
    }

    /// Gives up every lease of `holder` whose name starts with `prefix`, so
    /// another collector takes them at once instead of after they expire.
    /// Returns how many were released.
    pub async fn release_leases(&self, holder: &str, prefix: &str) -> Result<u64, StoreError> {
        self.timed("release_leases", async {
            let released = sqlx::query(
                "UPDATE leases SET holder = '', expires_at_ms = 0 \
                 WHERE holder = $1 AND substr(name, 1, CAST($3 AS INTEGER)) = $2",
            )
            .bind(holder)
            .bind(prefix)
            .bind(prefix.len() as i64)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(released)
        })
        .await
    }

    /// The holder of every lease whose name starts with `prefix` and that has
    /// not expired by the database's clock, by name.
    pub async fn lease_holders(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.timed("lease_holders", async {
            let mut conn = self.pool.acquire().await?;
            let now = match self.backend {
                Backend::Postgres => NOW_POSTGRES,
                Backend::Sqlite => NOW_SQLITE,
            };
            let rows = sqlx::query(&format!(
                "SELECT name, holder FROM leases WHERE substr(name, 1, CAST($2 AS INTEGER)) = $1 \
                 AND holder <> '' AND expires_at_ms > {now} ORDER BY name"
            ))
            .bind(prefix)
            .bind(prefix.len() as i64)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| Ok((row.try_get("name")?, row.try_get("holder")?)))
                .collect()
        })
        .await
    }
}

/// The database's clock in Unix milliseconds, as an SQL expression.
pub(super) const NOW_POSTGRES: &str =
    "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
pub(super) const NOW_SQLITE: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// The database's clock in Unix milliseconds, read inside `tx`.
pub(super) async fn db_now(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
) -> sqlx::Result<i64> {
    let expr = match backend {
        Backend::Postgres => NOW_POSTGRES,
        Backend::Sqlite => NOW_SQLITE,
    };
    let row = sqlx::query(&format!("SELECT {expr} AS now_ms"))
        .fetch_one(&mut **tx)
        .await?;
    row.try_get("now_ms")
}

async fn current_holder(tx: &mut Transaction<'static, Any>, name: &str) -> sqlx::Result<String> {
    let row = sqlx::query("SELECT holder FROM leases WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("holder")?,
        None => String::new(),
    })
}
