//! The served-units memory: which unit on which host answered a proxy's upstream
//! target, as the collector saw it across hosts (`served_units`, written by the
//! evaluator, read when a site's evidence is gathered; see `incidents::served`).

use sqlx::Row;

use super::{Store, StoreError};

/// One remembered fact: `unit` on `host_id` answered `target` (`address:port`) for
/// the proxy on `proxy_host`, last seen at `seen_ms`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServedRow {
    /// The host the unit runs on.
    pub host_id: String,
    /// The unit that owned the listener.
    pub unit: String,
    /// The target as the proxy names it, `address:port`.
    pub target: String,
    /// The host whose proxy targets it.
    pub proxy_host: String,
    /// When it was last seen (epoch ms).
    pub seen_ms: i64,
}

impl Store {
    /// Remembers `rows`, keeping the latest `seen_ms` of each.
    pub async fn record_served(&self, rows: &[ServedRow]) -> Result<(), StoreError> {
        self.timed("record_served", async {
            for r in rows {
                sqlx::query(
                    "INSERT INTO served_units (host_id, unit, target, proxy_host, seen_ms) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (host_id, unit, target, proxy_host) \
                     DO UPDATE SET seen_ms = excluded.seen_ms \
                     WHERE excluded.seen_ms > served_units.seen_ms",
                )
                .bind(&r.host_id)
                .bind(&r.unit)
                .bind(&r.target)
                .bind(&r.proxy_host)
                .bind(r.seen_ms)
                .execute(&self.writer)
                .await?;
            }
            Ok(())
        })
        .await
    }

    /// What is remembered of the units on `host_id`, oldest first.
    pub async fn served_on(&self, host_id: &str) -> Result<Vec<ServedRow>, StoreError> {
        self.timed("served_on", async {
            let rows = sqlx::query(
                "SELECT host_id, unit, target, proxy_host, seen_ms FROM served_units \
                 WHERE host_id = $1 ORDER BY seen_ms, unit, target, proxy_host",
            )
            .bind(host_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(ServedRow {
                        host_id: row.try_get("host_id")?,
                        unit: row.try_get("unit")?,
                        target: row.try_get("target")?,
                        proxy_host: row.try_get("proxy_host")?,
                        seen_ms: row.try_get("seen_ms")?,
                    })
                })
                .collect()
        })
        .await
    }
}
