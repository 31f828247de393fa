//! Agent reports and the hosts table they keep current, sites, and edge
//! observations: the raw material the attribution engine reads.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Backend, HostRow, MAX_LIST_LIMIT, NewReport, ObservationRow, SiteRow, Store, StoreError,
    StoredReport, get_flag, get_json, get_unsigned, to_json,
};

macro_rules! report_columns {
    () => {
        concat!("id, ", report_fields!())
    };
}

impl Store {
    /// Every host, by id.
    pub async fn list_hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        self.timed("list_hosts", async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                host_columns!(),
                " FROM hosts ORDER BY host_id"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(host_from_row).collect()
        })
        .await
    }

    /// One host.
    pub async fn get_host(&self, host_id: &str) -> Result<Option<HostRow>, StoreError> {
        self.timed("get_host", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                host_columns!(),
                " FROM hosts WHERE host_id = $1"
            ))
            .bind(host_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(host_from_row).transpose()
        })
        .await
    }

    /// The report bodies a host's current state folds, oldest first (by
    /// `generated_at_ms`, `seq`): from its newest full snapshot on, or from
    /// `window_start_ms` when that is earlier; at most [`MAX_LIST_LIMIT`].
    /// One query, so evaluating a site costs one round trip per host.
    pub async fn state_reports(
        &self,
        host_id: &str,
        window_start_ms: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.timed("state_reports", async {
            let rows = sqlx::query(include_str!("../../queries/state_reports.sql"))
                .bind(host_id)
                .bind(window_start_ms)
                .bind(i64::from(MAX_LIST_LIMIT))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(|row| row.try_get("body")).collect()
        })
        .await
    }

    /// A host's reports generated at or after `since_ms`, oldest first (by
    /// `generated_at_ms`, `seq`), at most [`MAX_LIST_LIMIT`].
    pub async fn reports_since(
        &self,
        host_id: &str,
        since_ms: i64,
    ) -> Result<Vec<StoredReport>, StoreError> {
        self.timed("reports_since", async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                report_columns!(),
                " FROM reports WHERE host_id = $1 AND generated_at_ms >= $2 \
                 ORDER BY generated_at_ms, seq LIMIT $3"
            ))
            .bind(host_id)
            .bind(since_ms)
            .bind(i64::from(MAX_LIST_LIMIT))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(report_from_row).collect()
        })
        .await
    }

    /// Creates or replaces a site by name.
    pub async fn upsert_site(&self, s: &SiteRow) -> Result<(), StoreError> {
        self.timed("upsert_site", async {
            sqlx::query(
                "INSERT INTO sites (name, url, origin, hosts, labels) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url, origin = excluded.origin, \
                 hosts = excluded.hosts, labels = excluded.labels",
            )
            .bind(&s.name)
            .bind(&s.url)
            .bind(&s.origin)
            .bind(to_json(&s.hosts))
            .bind(to_json(&s.labels))
            .execute(&self.writer)
            .await
            .map(|_| ())
        })
        .await
    }

    /// Adds hosts to sites (`(site, host)` pairs), creating a discovered site
    /// for a name not stored yet. Atomic per call and safe against concurrent
    /// callers, other collectors included: each site's row is locked while its
    /// host list is merged (`FOR UPDATE` on PostgreSQL; SQLite's write
    /// transaction holds the whole database).
    pub async fn add_site_hosts(&self, pairs: &[(String, String)]) -> Result<(), StoreError> {
        let mut by_site: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (site, host) in pairs {
            by_site.entry(site).or_default().push(host);
        }
        if by_site.is_empty() {
            return Ok(());
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let select = format!("SELECT hosts FROM sites WHERE name = $1{lock}");
        self.timed("add_site_hosts", async {
            let mut tx = self.begin_write().await?;
            for (site, hosts) in by_site {
                sqlx::query(
                    "INSERT INTO sites (name, url, origin, hosts, labels) \
                     VALUES ($1, '', 'discovered', '[]', '{}') ON CONFLICT (name) DO NOTHING",
                )
                .bind(site)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query(&select).bind(site).fetch_one(&mut *tx).await?;
                let mut stored: Vec<String> = get_json(&row, "hosts")?;
                let before = stored.len();
                for host in hosts {
                    if !stored.iter().any(|h| h == host) {
                        stored.push(host.to_owned());
                    }
                }
                if stored.len() != before {
                    stored.sort();
                    sqlx::query("UPDATE sites SET hosts = $1 WHERE name = $2")
                        .bind(to_json(&stored))
                        .bind(site)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await
        })
        .await
    }

    /// Every site, by name.
    pub async fn list_sites(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.timed("list_sites", async {
            let rows =
                sqlx::query("SELECT name, url, origin, hosts, labels FROM sites ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|row| {
                    Ok(SiteRow {
                        name: row.try_get("name")?,
                        url: row.try_get("url")?,
                        origin: row.try_get("origin")?,
                        hosts: get_json(row, "hosts")?,
                        labels: get_json(row, "labels")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Stores one probe result of `site`.
    pub async fn insert_observation(
        &self,
        site: &str,
        obs: &ObservationRow,
    ) -> Result<(), StoreError> {
        self.timed("insert_observation", async {
            sqlx::query(
                "INSERT INTO observations (site, vantage, target, status, outcome, at_ms, body) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(site)
            .bind(&obs.vantage)
            .bind(&obs.target)
            .bind(i64::from(obs.status))
            .bind(&obs.outcome)
            .bind(obs.at_ms)
            .bind(&obs.body)
            .execute(&self.writer)
            .await
            .map(|_| ())
        })
        .await
    }

    /// Probe results of `site` at or after `since_ms`, oldest first, at most
    /// [`MAX_LIST_LIMIT`] (the newest ones when there are more).
    pub async fn observations_since(
        &self,
        site: &str,
        since_ms: i64,
    ) -> Result<Vec<ObservationRow>, StoreError> {
        self.timed("observations_since", async {
            let rows = sqlx::query(
                "SELECT vantage, target, status, outcome, at_ms, body, id FROM observations \
                 WHERE site = $1 AND at_ms >= $2 ORDER BY at_ms DESC, id DESC LIMIT $3",
            )
            .bind(site)
            .bind(since_ms)
            .bind(i64::from(MAX_LIST_LIMIT))
            .fetch_all(&self.pool)
            .await?;
            let mut out = rows
                .iter()
                .map(|row| {
                    Ok(ObservationRow {
                        vantage: row.try_get("vantage")?,
                        target: row.try_get("target")?,
                        status: get_unsigned(row, "status")?,
                        outcome: row.try_get("outcome")?,
                        at_ms: row.try_get("at_ms")?,
                        body: row.try_get("body")?,
                    })
                })
                .collect::<sqlx::Result<Vec<_>>>()?;
            out.reverse();
            Ok(out)
        })
        .await
    }
}

fn host_from_row(row: &AnyRow) -> sqlx::Result<HostRow> {
    Ok(HostRow {
        host_id: row.try_get("host_id")?,
        first_seen_ms: row.try_get("first_seen_ms")?,
        last_seen_ms: row.try_get("last_seen_ms")?,
        last_generated_at_ms: row.try_get("last_generated_at_ms")?,
        agent_version: row.try_get("agent_version")?,
        agent_instance: row.try_get("agent_instance")?,
        interval_ms: get_unsigned(row, "interval_ms")?,
        addresses: get_json(row, "addresses")?,
        spool_dropped: get_unsigned(row, "spool_dropped")?,
        report_count: get_unsigned(row, "report_count")?,
    })
}

fn report_from_row(row: &AnyRow) -> sqlx::Result<StoredReport> {
    Ok(StoredReport {
        id: row.try_get("id")?,
        report: NewReport {
            host_id: row.try_get("host_id")?,
            agent_instance: row.try_get("agent_instance")?,
            seq: get_unsigned(row, "seq")?,
            agent_version: row.try_get("agent_version")?,
            generated_at_ms: row.try_get("generated_at_ms")?,
            received_at_ms: row.try_get("received_at_ms")?,
            replayed: get_flag(row, "replayed")?,
            full_snapshot: get_flag(row, "full_snapshot")?,
            interval_ms: get_unsigned(row, "interval_ms")?,
            spool_dropped: get_unsigned(row, "spool_dropped")?,
            addresses: get_json(row, "addresses")?,
            body: row.try_get("body")?,
            cross_probes: Vec::new(),
        },
    })
}
