//! Incidents: one open incident per (site, layer, cause, host), opened or
//! updated from verdicts, counted good/bad by later observations, resolved,
//! with their verdict history (each verdict carries its evidence) and a
//! change feed that every collector sharing the database can follow.
//!
//! Writes that change an incident append to `incident_changes` as their last
//! statement; on PostgreSQL they first take a transaction advisory lock so
//! change ids commit in order (a reader at cursor N never misses a change
//! numbered below N that committed later). An `Unchanged` upsert writes no
//! change and no history.

use sqlx::{Any, Transaction};

use prost::Message;

use super::incident_queries::incident_from_row;
use super::outbox::{self, Outgoing};
use super::{Backend, Change, IncidentRow, IncidentUpsert, Store, StoreError, get_unsigned};

/// The receivers an incident change is routed to, given the incident as the
/// change leaves it; called inside the change's transaction.
pub type Routes<'a> = &'a (dyn Fn(&IncidentRow) -> Vec<Outgoing> + Send + Sync);

/// The PostgreSQL advisory lock key that orders the change feed: "gw502" and a zero byte.
const CHANGE_FEED_LOCK: i64 = 0x6777_3530_3200;
/// Rounds of insert-or-update tried when another collector resolves the key meanwhile.
const UPSERT_ROUNDS: usize = 4;

impl Store {
    /// Opens an incident for the verdict's key, or updates the open one.
    ///
    /// Safe when several collectors upsert the same key at once: exactly one
    /// incident is open per key, and one verdict change is recorded once.
    /// Opened and Updated add a history row.
    pub async fn open_or_update_incident(
        &self,
        i: &IncidentUpsert,
    ) -> Result<(IncidentRow, Change), StoreError> {
        self.open_or_update_routed(i, &|_| Vec::new()).await
    }

    /// [`Store::open_or_update_incident`], and when it opens an incident, a
    /// pending `firing` delivery for each of `routes` in the same transaction.
    pub async fn open_or_update_routed(
        &self,
        i: &IncidentUpsert,
        routes: Routes<'_>,
    ) -> Result<(IncidentRow, Change), StoreError> {
        self.timed("open_or_update_incident", async {
            let mut tx = self.begin_write().await?;
            for _ in 0..UPSERT_ROUNDS {
                let opened = bind_upsert(sqlx::query(include_str!("../../queries/incident_open.sql")), i)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = opened {
                    let row = incident_from_row(&row)?;
                    add_history(&mut tx, &row).await?;
                    let change = self.add_change(&mut tx, row.id, "opened", i.at_ms).await?;
                    notify(&mut tx, &row, change, "firing", routes, i.at_ms).await?;
                    tx.commit().await?;
                    return Ok((row, Change::Opened));
                }
                let updated = bind_upsert(sqlx::query(include_str!("../../queries/incident_update.sql")), i)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = updated {
                    let row = incident_from_row(&row)?;
                    add_history(&mut tx, &row).await?;
                    self.add_change(&mut tx, row.id, "updated", i.at_ms).await?;
                    tx.commit().await?;
                    return Ok((row, Change::Updated));
                }
                let seen = sqlx::query(concat!(
                    "UPDATE incidents SET last_seen_at_ms = CASE WHEN $5 > last_seen_at_ms \
                     THEN $5 ELSE last_seen_at_ms END \
                     WHERE site = $1 AND host = $2 AND layer = $3 AND cause = $4 AND state = 'open' \
                     RETURNING ",
                    incident_columns!()
                ))
                .bind(&i.site)
                .bind(&i.host)
                .bind(&i.layer)
                .bind(&i.cause)
                .bind(i.at_ms)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = seen {
                    let row = incident_from_row(&row)?;
                    tx.commit().await?;
                    return Ok((row, Change::Unchanged));
                }
                // Resolved by another collector between the statements: open anew.
            }
            Err(sqlx::Error::Protocol(format!(
                "incident key {}/{}/{}/{} kept changing during upsert",
                i.site, i.layer, i.cause, i.host
            )))
        })
        .await
    }

    /// Counts a good observation for an open incident; returns the consecutive
    /// good count.
    pub async fn record_good_observation(
        &self,
        incident_id: i64,
        at_ms: i64,
    ) -> Result<u32, StoreError> {
        let row = self
            .timed("record_good_observation", async {
                sqlx::query(
                    "UPDATE incidents SET good_observations = good_observations + 1, \
                     last_seen_at_ms = CASE WHEN $2 > last_seen_at_ms THEN $2 ELSE last_seen_at_ms END \
                     WHERE id = $1 RETURNING good_observations",
                )
                .bind(incident_id)
                .bind(at_ms)
                .fetch_optional(&self.writer)
                .await?
                .map(|row| get_unsigned::<u32>(&row, "good_observations"))
                .transpose()
            })
            .await?;
        row.ok_or(StoreError::NoSuchIncident { id: incident_id })
    }

    /// Counts a bad observation: resets the good counter, bumps the bad one.
    pub async fn record_bad_observation(
        &self,
        incident_id: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .timed("record_bad_observation", async {
                sqlx::query(
                    "UPDATE incidents SET good_observations = 0, bad_observations = bad_observations + 1, \
                     last_seen_at_ms = CASE WHEN $2 > last_seen_at_ms THEN $2 ELSE last_seen_at_ms END \
                     WHERE id = $1",
                )
                .bind(incident_id)
                .bind(at_ms)
                .execute(&self.writer)
                .await
            })
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NoSuchIncident { id: incident_id });
        }
        Ok(())
    }

    /// Resolves an open incident; `None` if it is not open (already resolved
    /// by this or another collector, or unknown).
    pub async fn resolve_incident(
        &self,
        incident_id: i64,
        at_ms: i64,
    ) -> Result<Option<IncidentRow>, StoreError> {
        self.resolve_routed(incident_id, at_ms, &|_| Vec::new())
            .await
    }

    /// [`Store::resolve_incident`], with a pending `resolved` delivery for
    /// each of `routes` written in the same transaction.
    pub async fn resolve_routed(
        &self,
        incident_id: i64,
        at_ms: i64,
        routes: Routes<'_>,
    ) -> Result<Option<IncidentRow>, StoreError> {
        self.timed("resolve_incident", async {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(concat!(
                "UPDATE incidents SET state = 'resolved', resolved_at_ms = $2, updated_at_ms = $2 \
                 WHERE id = $1 AND state = 'open' RETURNING ",
                incident_columns!()
            ))
            .bind(incident_id)
            .bind(at_ms)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let row = incident_from_row(&row)?;
            add_history(&mut tx, &row).await?;
            let change = self.add_change(&mut tx, row.id, "resolved", at_ms).await?;
            notify(&mut tx, &row, change, "resolved", routes, at_ms).await?;
            tx.commit().await?;
            Ok(Some(row))
        })
        .await
    }

    /// Appends a change row and returns its id; only the change's
    /// deliveries are written after it in its transaction.
    async fn add_change(
        &self,
        tx: &mut Transaction<'static, Any>,
        incident_id: i64,
        kind: &str,
        at_ms: i64,
    ) -> sqlx::Result<i64> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CHANGE_FEED_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO incident_changes (incident_id, kind, at_ms) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(incident_id)
        .bind(kind)
        .bind(at_ms)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::Row::try_get(&row, "id")
    }
}

/// Writes the deliveries of one change: the incident as the change left it,
/// to every receiver `routes` names.
async fn notify(
    tx: &mut Transaction<'static, Any>,
    row: &IncidentRow,
    change_id: i64,
    event: &str,
    routes: Routes<'_>,
    at_ms: i64,
) -> sqlx::Result<()> {
    let routes = routes(row);
    if routes.is_empty() {
        return Ok(());
    }
    let incident = row.to_proto().encode_to_vec();
    outbox::enqueue(tx, row.id, change_id, event, &incident, &routes, at_ms).await
}

fn bind_upsert<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    i: &'q IncidentUpsert,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&i.site)
        .bind(&i.host)
        .bind(&i.layer)
        .bind(&i.cause)
        .bind(i64::from(i.status))
        .bind(&i.emitted_by)
        .bind(&i.owner)
        .bind(i.confidence)
        .bind(&i.summary)
        .bind(&i.next_check)
        .bind(&i.verdict)
        .bind(i.at_ms)
}

async fn add_history(tx: &mut Transaction<'static, Any>, row: &IncidentRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO incident_history (incident_id, at_ms, state, status, summary, verdict) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(row.id)
    .bind(row.updated_at_ms)
    .bind(&row.state)
    .bind(i64::from(row.status))
    .bind(&row.summary)
    .bind(&row.verdict)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
