//! The delivery log as an outbox: every incident change that notifies
//! (opened, resolved) writes one `deliveries` row per routed receiver in the
//! transaction of the change, unique by (change, receiver). Senders on any
//! collector claim due rows of a receiver for a while
//! ([`Store::claim_deliveries`], `FOR UPDATE SKIP LOCKED` on PostgreSQL so
//! two senders never wait on or take the same row), send, and record the
//! outcome ([`Store::finish_delivery`]) only if their claim still stands.
//! A claim left by a collector that died expires and the row is claimed
//! again; the row's id is its idempotency key, so a receiver can tell the
//! redelivery from a new event. Times that decide (claims, backoff) are the
//! database's clock.

use sqlx::{Any, Row, Transaction};

use super::leases::db_now;
use super::{Backend, Store, StoreError, get_unsigned};

/// One receiver an incident change is routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The receiver's name.
    pub receiver: String,
    /// An owner that replaces the verdict's in what is sent.
    pub owner_override: Option<String>,
}

/// A delivery a sender claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// Row id; also the idempotency key sent to the receiver.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The receiver's name.
    pub receiver: String,
    /// `firing` or `resolved`.
    pub event: String,
    /// The owner that replaces the verdict's, "" for none.
    pub owner_override: String,
    /// The prost-encoded `Incident` as the change left it.
    pub incident: Vec<u8>,
    /// Attempts before this claim.
    pub attempts: u32,
    /// A later change of the same incident is waiting for this receiver.
    pub superseded: bool,
}

/// How one attempt ended, for [`Store::finish_delivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// `pending` (retry later), `delivered` or `failed`.
    pub state: &'static str,
    /// Attempts including this one.
    pub attempts: u32,
    /// When it finished (shown to operators), Unix ms.
    pub at_ms: i64,
    /// Why it failed, "" for none.
    pub error: String,
    /// The receiver's HTTP status, 0 for none.
    pub http_status: u16,
    /// For `pending`: how long until the row is due again.
    pub retry_in_ms: i64,
}

impl Store {
    /// Claims up to `limit` due deliveries of `receiver` for `holder` until
    /// the database's now plus `ttl_ms`, oldest first. A row waits while an
    /// older row of the same incident and receiver is pending, so a resolve
    /// never overtakes its firing.
    pub async fn claim_deliveries(
        &self,
        receiver: &str,
        holder: &str,
        ttl_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.timed("claim_deliveries", async {
            let mut tx = self.begin_write().await?;
            let now = db_now(self.backend, &mut tx).await?;
            let lock = match self.backend {
                Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let rows = sqlx::query(&format!(
                "SELECT d.id, d.incident_id, d.receiver, d.event, d.owner_override, d.incident, \
                 d.attempts, CASE WHEN EXISTS (SELECT 1 FROM deliveries n WHERE \
                 n.receiver = d.receiver AND n.incident_id = d.incident_id AND n.id > d.id \
                 AND n.change_id IS NOT NULL) THEN 1 ELSE 0 END AS superseded \
                 FROM deliveries d WHERE d.receiver = $1 AND d.state = 'pending' \
                 AND d.change_id IS NOT NULL AND d.next_attempt_at_ms <= $2 \
                 AND d.claim_expires_at_ms <= $2 AND NOT EXISTS (SELECT 1 FROM deliveries o \
                 WHERE o.receiver = d.receiver AND o.incident_id = d.incident_id \
                 AND o.state = 'pending' AND o.id < d.id) ORDER BY d.id LIMIT $3{lock}"
            ))
            .bind(receiver)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                let delivery = ClaimedDelivery {
                    id: row.try_get("id")?,
                    incident_id: row.try_get("incident_id")?,
                    receiver: row.try_get("receiver")?,
                    event: row.try_get("event")?,
                    owner_override: row.try_get("owner_override")?,
                    incident: row.try_get("incident")?,
                    attempts: get_unsigned(row, "attempts")?,
                    superseded: row.try_get::<i64, _>("superseded")? != 0,
                };
                sqlx::query(
                    "UPDATE deliveries SET claimed_by = $2, claim_expires_at_ms = $3 WHERE id = $1",
                )
                .bind(delivery.id)
                .bind(holder)
                .bind(now.saturating_add(ttl_ms))
                .execute(&mut *tx)
                .await?;
                claimed.push(delivery);
            }
            tx.commit().await?;
            Ok(claimed)
        })
        .await
    }

    /// Records an attempt of a delivery `holder` claimed and lets the claim
    /// go. False (and nothing written) when the claim was lost meanwhile:
    /// it expired and another sender claimed the row.
    pub async fn finish_delivery(
        &self,
        id: i64,
        holder: &str,
        outcome: &AttemptOutcome,
    ) -> Result<bool, StoreError> {
        let now = match self.backend {
            Backend::Postgres => super::leases::NOW_POSTGRES,
            Backend::Sqlite => super::leases::NOW_SQLITE,
        };
        self.timed("finish_delivery", async {
            let done = sqlx::query(&format!(
                "UPDATE deliveries SET state = $3, attempts = $4, updated_at_ms = $5, error = $6, \
                 http_status = $7, next_attempt_at_ms = {now} + $8, claimed_by = '', \
                 claim_expires_at_ms = 0 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'"
            ))
            .bind(id)
            .bind(holder)
            .bind(outcome.state)
            .bind(i64::from(outcome.attempts))
            .bind(outcome.at_ms)
            .bind(&outcome.error)
            .bind(i64::from(outcome.http_status))
            .bind(outcome.retry_in_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(done == 1)
        })
        .await
    }

    /// Lets go of every claim of `holder` (a collector shutting down), so
    /// another sender takes the rows at once. Returns how many.
    pub async fn release_deliveries(&self, holder: &str) -> Result<u64, StoreError> {
        self.timed("release_deliveries", async {
            let released = sqlx::query(
                "UPDATE deliveries SET claimed_by = '', claim_expires_at_ms = 0 \
                 WHERE claimed_by = $1 AND state = 'pending'",
            )
            .bind(holder)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(released)
        })
        .await
    }

    /// Deliveries still pending, of every receiver.
    pub async fn pending_deliveries(&self) -> Result<u64, StoreError> {
        self.timed("pending_deliveries", async {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending' \
                 AND change_id IS NOT NULL",
            )
            .fetch_one(&self.pool)
            .await?;
            get_unsigned(&row, "n")
        })
        .await
    }
}

/// Writes one pending delivery per route of change `change_id`; a route
/// already written for the change is left as it is.
pub(super) async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    incident_id: i64,
    change_id: i64,
    event: &str,
    incident: &[u8],
    routes: &[Outgoing],
    at_ms: i64,
) -> sqlx::Result<()> {
    for route in routes {
        sqlx::query(
            "INSERT INTO deliveries (incident_id, receiver, event, state, attempts, created_at_ms, \
             updated_at_ms, error, http_status, change_id, owner_override, incident, \
             next_attempt_at_ms, claimed_by, claim_expires_at_ms) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $4, '', 0, $5, $6, $7, 0, '', 0) \
             ON CONFLICT (change_id, receiver) DO NOTHING",
        )
        .bind(incident_id)
        .bind(&route.receiver)
        .bind(event)
        .bind(at_ms)
        .bind(change_id)
        .bind(route.owner_override.as_deref().unwrap_or(""))
        .bind(incident)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
