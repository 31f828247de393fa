//! The delivery log of notifications, leases that elect one collector to run
//! a singleton loop when several share a database, and retention.

use sqlx::Row;

use super::incident_queries::push_in;
use super::{
    DeliveryRow, MAX_LIST_LIMIT, NewDelivery, PruneStats, Store, StoreError, get_unsigned,
};

impl Store {
    /// Logs a notification as `pending`; returns its id.
    pub async fn insert_delivery(&self, d: &NewDelivery) -> Result<i64, StoreError> {
        self.timed("insert_delivery", async {
            let row = sqlx::query(
                "INSERT INTO deliveries (incident_id, receiver, event, state, attempts, created_at_ms, \
                 updated_at_ms, error, http_status) VALUES ($1, $2, $3, 'pending', 0, $4, $4, '', 0) \
                 RETURNING id",
            )
            .bind(d.incident_id)
            .bind(&d.receiver)
            .bind(&d.event)
            .bind(d.at_ms)
            .fetch_one(&self.writer)
            .await?;
            row.try_get("id")
        })
        .await
    }

    /// Records the outcome of delivery attempts: `state` is `pending`,
    /// `delivered` or `failed`; `error` "" and `http_status` 0 for none.
    pub async fn update_delivery(
        &self,
        id: i64,
        state: &str,
        attempts: u32,
        at_ms: i64,
        error: &str,
        http_status: u16,
    ) -> Result<(), StoreError> {
        self.timed("update_delivery", async {
            sqlx::query(
                "UPDATE deliveries SET state = $2, attempts = $3, updated_at_ms = $4, error = $5, \
                 http_status = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(state)
            .bind(i64::from(attempts))
            .bind(at_ms)
            .bind(error)
            .bind(i64::from(http_status))
            .execute(&self.writer)
            .await
            .map(|_| ())
        })
        .await
    }

    /// Logged notifications, of one incident or all, newest first, at most
    /// `limit` (capped at [`MAX_LIST_LIMIT`]).
    pub async fn list_deliveries(
        &self,
        incident_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.list_deliveries_of_sites(incident_id, None, limit)
            .await
    }

    /// Like [`Store::list_deliveries`], and when `sites` is given only those
    /// of incidents of these sites (a tenant's scope; none matches nothing).
    pub async fn list_deliveries_of_sites(
        &self,
        incident_id: Option<i64>,
        sites: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut sql = String::from(
            "SELECT id, incident_id, receiver, event, state, attempts, created_at_ms, \
             updated_at_ms, error, http_status FROM deliveries WHERE 1 = 1",
        );
        let mut texts: Vec<&str> = Vec::new();
        if let Some(sites) = sites {
            let mut inner = String::from("SELECT id FROM incidents WHERE 1 = 1");
            push_in(&mut inner, "site", sites, &mut texts);
            sql.push_str(&format!(" AND incident_id IN ({inner})"));
        }
        let mut next = texts.len();
        if incident_id.is_some() {
            next += 1;
            sql.push_str(&format!(" AND incident_id = ${next}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", next + 1));
        let limit = i64::from(limit.min(MAX_LIST_LIMIT));
        self.timed("list_deliveries", async {
            let mut query = sqlx::query(&sql);
            for text in texts {
                query = query.bind(text);
            }
            if let Some(incident_id) = incident_id {
                query = query.bind(incident_id);
            }
            let rows = query.bind(limit).fetch_all(&self.pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(DeliveryRow {
                        id: row.try_get("id")?,
                        incident_id: row.try_get("incident_id")?,
                        receiver: row.try_get("receiver")?,
                        event: row.try_get("event")?,
                        state: row.try_get("state")?,
                        attempts: get_unsigned(row, "attempts")?,
                        created_at_ms: row.try_get("created_at_ms")?,
                        updated_at_ms: row.try_get("updated_at_ms")?,
                        error: row.try_get("error")?,
                        http_status: get_unsigned(row, "http_status")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`.
    /// True if `holder` holds it now: it was free, expired, or already theirs.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.timed("try_lease", async {
            let row = sqlx::query(
                "INSERT INTO leases (name, holder, expires_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at_ms = excluded.expires_at_ms \
                 WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= $4 \
                 RETURNING holder",
            )
            .bind(name)
            .bind(holder)
            .bind(now_ms.saturating_add(ttl_ms))
            .bind(now_ms)
            .fetch_optional(&self.writer)
            .await?;
            Ok(row.is_some())
        })
        .await
    }

    /// Deletes reports, observations and feed entries older than
    /// `older_than_ms`, and incidents resolved before it with their
    /// history and deliveries. Open incidents and each host's newest full
    /// snapshot are kept whatever their age.
    pub async fn prune(&self, older_than_ms: i64) -> Result<PruneStats, StoreError> {
        self.timed("prune", async {
            let reports = sqlx::query(include_str!("../../queries/prune_reports.sql"))
                .bind(older_than_ms)
                .execute(&self.writer)
                .await?
                .rows_affected();
            let observations = sqlx::query("DELETE FROM observations WHERE at_ms < $1")
                .bind(older_than_ms)
                .execute(&self.writer)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM incident_changes WHERE at_ms < $1")
                .bind(older_than_ms)
                .execute(&self.writer)
                .await?;
            sqlx::query("DELETE FROM served_units WHERE seen_ms < $1")
                .bind(older_than_ms)
                .execute(&self.writer)
                .await?;
            // incident_history, incident_changes and deliveries cascade.
            let incidents = sqlx::query(
                "DELETE FROM incidents WHERE state = 'resolved' AND resolved_at_ms < $1",
            )
            .bind(older_than_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
            Ok(PruneStats {
                reports,
                observations,
                incidents,
            })
        })
        .await
    }
}
