//! Reading incidents: filtered lists (served by the incidents_* indexes),
//! one incident and its verdict history,
//! and the change feed every collector sharing the database can follow.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    DEFAULT_LIST_LIMIT, HistoryRow, IncidentFilter, IncidentRow, MAX_LIST_LIMIT, Store, StoreError,
    get_unsigned,
};

impl Store {
    /// Open incidents, of one site or all, most recently updated first.
    pub async fn open_incidents(&self, site: Option<&str>) -> Result<Vec<IncidentRow>, StoreError> {
        self.list_incidents(&IncidentFilter {
            site: site.map(str::to_owned),
            limit: MAX_LIST_LIMIT,
            ..IncidentFilter::default()
        })
        .await
    }

    /// Incidents matching `f`, most recently updated first.
    pub async fn list_incidents(&self, f: &IncidentFilter) -> Result<Vec<IncidentRow>, StoreError> {
        let mut sql = String::from(concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE 1 = 1"
        ));
        let mut texts: Vec<&str> = Vec::new();
        if !f.all {
            sql.push_str(" AND state = 'open'");
        }
        for (column, value) in [("site", &f.site), ("layer", &f.layer), ("owner", &f.owner)] {
            if let Some(value) = value {
                texts.push(value);
                sql.push_str(&format!(" AND {column} = ${}", texts.len()));
            }
        }
        if let Some(sites) = &f.sites {
            push_in(&mut sql, "site", sites, &mut texts);
        }
        if f.since_ms.is_some() {
            sql.push_str(&format!(" AND updated_at_ms >= ${}", texts.len() + 1));
        }
        let limit = match f.limit {
            0 => DEFAULT_LIST_LIMIT,
            n => n.min(MAX_LIST_LIMIT),
        };
        sql.push_str(&format!(
            " ORDER BY updated_at_ms DESC, id DESC LIMIT {limit}"
        ));
        self.timed("list_incidents", async {
            let mut query = sqlx::query(&sql);
            for text in texts {
                query = query.bind(text);
            }
            if let Some(since) = f.since_ms {
                query = query.bind(since);
            }
            let rows = query.fetch_all(&self.pool).await?;
            rows.iter().map(incident_from_row).collect()
        })
        .await
    }

    /// One incident.
    pub async fn get_incident(&self, id: i64) -> Result<Option<IncidentRow>, StoreError> {
        self.timed("get_incident", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                incident_columns!(),
                " FROM incidents WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(incident_from_row).transpose()
        })
        .await
    }

    /// An incident's verdict changes, oldest first.
    pub async fn incident_history(&self, id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        self.timed("incident_history", async {
            let rows = sqlx::query(
                "SELECT id, incident_id, at_ms, state, status, summary, verdict FROM incident_history \
                 WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(HistoryRow {
                        id: row.try_get("id")?,
                        incident_id: row.try_get("incident_id")?,
                        at_ms: row.try_get("at_ms")?,
                        state: row.try_get("state")?,
                        status: get_unsigned(row, "status")?,
                        summary: row.try_get("summary")?,
                        verdict: row.try_get("verdict")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Changes made by any collector after `cursor` (a change id; 0 for the
    /// start), oldest first, at most [`DEFAULT_LIST_LIMIT`] per call: change
    /// id, the incident as it is now, and `opened`, `updated` or `resolved`.
    pub async fn incident_changes_since(
        &self,
        cursor: i64,
    ) -> Result<Vec<(i64, IncidentRow, String)>, StoreError> {
        self.timed("incident_changes_since", async {
            let rows = sqlx::query(include_str!("../../queries/incident_changes_since.sql"))
                .bind(cursor)
                .bind(i64::from(DEFAULT_LIST_LIMIT))
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get("change_id")?,
                        incident_from_row(row)?,
                        row.try_get("change_kind")?,
                    ))
                })
                .collect()
        })
        .await
    }

    /// The newest change id, for a watcher that wants only future changes.
    pub async fn incident_change_cursor(&self) -> Result<i64, StoreError> {
        self.timed("incident_change_cursor", async {
            let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS cursor FROM incident_changes")
                .fetch_one(&self.pool)
                .await?;
            row.try_get("cursor")
        })
        .await
    }
}

/// Appends ` AND column IN ($n, …)` for `values` to `sql`, numbering the
/// placeholders after those already in `texts`; nothing matches an empty list.
pub(super) fn push_in<'a>(
    sql: &mut String,
    column: &str,
    values: &'a [String],
    texts: &mut Vec<&'a str>,
) {
    if values.is_empty() {
        sql.push_str(" AND 1 = 0");
        return;
    }
    let mut placeholders = Vec::with_capacity(values.len());
    for value in values {
        texts.push(value);
        placeholders.push(format!("${}", texts.len()));
    }
    sql.push_str(&format!(" AND {column} IN ({})", placeholders.join(", ")));
}

/// An `incidents` row (columns as in `incident_columns!`).
pub(super) fn incident_from_row(row: &AnyRow) -> sqlx::Result<IncidentRow> {
    Ok(IncidentRow {
        id: row.try_get("id")?,
        site: row.try_get("site")?,
        host: row.try_get("host")?,
        layer: row.try_get("layer")?,
        cause: row.try_get("cause")?,
        state: row.try_get("state")?,
        status: get_unsigned(row, "status")?,
        emitted_by: row.try_get("emitted_by")?,
        owner: row.try_get("owner")?,
        confidence: row.try_get("confidence")?,
        summary: row.try_get("summary")?,
        next_check: row.try_get("next_check")?,
        verdict: row.try_get("verdict")?,
        opened_at_ms: row.try_get("opened_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        last_seen_at_ms: row.try_get("last_seen_at_ms")?,
        resolved_at_ms: row.try_get("resolved_at_ms")?,
        good_observations: get_unsigned(row, "good_observations")?,
        bad_observations: get_unsigned(row, "bad_observations")?,
    })
}
