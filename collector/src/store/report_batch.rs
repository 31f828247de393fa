//! Group commit of agent reports: one transaction stores a whole batch of
//! reports with one multi-row `INSERT`, folds them into the `hosts` table
//! with one multi-row upsert and stores the cross probes the new reports
//! carry, so a busy collector pays a few round trips per batch instead of
//! several per report (and SQLite's single writer is taken once per batch,
//! not once per report). A report and its cross probes commit together.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use sqlx::Row;

use super::{InsertOutcome, NewReport, ObservationRow, Store, StoreError, to_i64, to_json};

/// The most reports one statement carries: 12 parameters each stays far below
/// both backends' parameter limits (SQLite 32,766, PostgreSQL 65,535).
pub const MAX_BATCH: usize = 512;

/// The most observations one statement carries (7 parameters each).
const MAX_OBSERVATIONS: usize = 1024;

impl Store {
    /// Stores one report; see [`Store::insert_reports`].
    pub async fn insert_report(&self, r: &NewReport) -> Result<InsertOutcome, StoreError> {
        let outcomes = self.insert_reports(std::slice::from_ref(r)).await?;
        Ok(outcomes[0])
    }

    /// Stores reports, idempotently by `(host_id, agent_instance, seq)`, and
    /// folds the new ones into the `hosts` table, one transaction per
    /// [`MAX_BATCH`] reports. Outcomes are in input order; a key repeated
    /// within the batch is stored once and its later copies are duplicates.
    /// All or nothing per transaction: on error, no report of the failed
    /// chunk is stored (earlier chunks are).
    pub async fn insert_reports(
        &self,
        batch: &[NewReport],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(MAX_BATCH) {
            outcomes.extend(self.insert_chunk(chunk).await?);
        }
        Ok(outcomes)
    }

    async fn insert_chunk(&self, batch: &[NewReport]) -> Result<Vec<InsertOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let rows = batch
            .iter()
            .map(Columns::of)
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.timed("insert_reports", async {
            let mut tx = self.begin_write().await?;
            let sql = format!(
                concat!(
                    "INSERT INTO reports (",
                    report_fields!(),
                    ") VALUES {} ON CONFLICT (host_id, agent_instance, seq) DO NOTHING \
                     RETURNING host_id, agent_instance, seq"
                ),
                placeholders(batch.len(), 12)
            );
            let mut insert = sqlx::query(&sql);
            for row in &rows {
                let r = row.report;
                insert = insert
                    .bind(&r.host_id)
                    .bind(&r.agent_instance)
                    .bind(row.seq)
                    .bind(&r.agent_version)
                    .bind(r.generated_at_ms)
                    .bind(r.received_at_ms)
                    .bind(i64::from(r.replayed))
                    .bind(i64::from(r.full_snapshot))
                    .bind(i64::from(r.interval_ms))
                    .bind(row.spool_dropped)
                    .bind(row.addresses.as_str())
                    .bind(&r.body);
            }
            let mut stored = HashSet::new();
            for row in insert.fetch_all(&mut *tx).await? {
                let key: (String, String, i64) = (
                    row.try_get("host_id")?,
                    row.try_get("agent_instance")?,
                    row.try_get("seq")?,
                );
                stored.insert(key);
            }
            let outcomes: Vec<InsertOutcome> = rows
                .iter()
                .map(|row| {
                    let r = row.report;
                    let key = (r.host_id.clone(), r.agent_instance.clone(), row.seq);
                    InsertOutcome {
                        duplicate: !stored.remove(&key),
                    }
                })
                .collect();
            let new = rows
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| !o.duplicate)
                .map(|(row, _)| row);
            let hosts = fold_hosts(new);
            if !hosts.is_empty() {
                let sql = format!(
                    concat!("INSERT INTO hosts (", host_columns!(), ") VALUES {} {}"),
                    placeholders(hosts.len(), 10),
                    include_str!("../../queries/upsert_host.sql")
                );
                let mut upsert = sqlx::query(&sql);
                for h in hosts.values() {
                    let newest = h.newest.report;
                    upsert = upsert
                        .bind(&newest.host_id)
                        .bind(h.first_seen_ms)
                        .bind(h.last_seen_ms)
                        .bind(newest.generated_at_ms)
                        .bind(&newest.agent_version)
                        .bind(&newest.agent_instance)
                        .bind(i64::from(newest.interval_ms))
                        .bind(h.newest.addresses.as_str())
                        .bind(h.newest.spool_dropped)
                        .bind(h.count);
                }
                upsert.execute(&mut *tx).await?;
            }
            let probes: Vec<&(String, ObservationRow)> = rows
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| !o.duplicate)
                .flat_map(|(row, _)| &row.report.cross_probes)
                .collect();
            for chunk in probes.chunks(MAX_OBSERVATIONS) {
                let sql = format!(
                    "INSERT INTO observations (site, vantage, target, status, outcome, at_ms, body) \
                     VALUES {}",
                    placeholders(chunk.len(), 7)
                );
                let mut insert = sqlx::query(&sql);
                for (site, obs) in chunk {
                    insert = insert
                        .bind(site)
                        .bind(&obs.vantage)
                        .bind(&obs.target)
                        .bind(i64::from(obs.status))
                        .bind(&obs.outcome)
                        .bind(obs.at_ms)
                        .bind(&obs.body);
                }
                insert.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(outcomes)
        })
        .await
    }
}

/// A report with its columns that need converting, converted up front so that
/// a value out of range fails before the transaction starts.
struct Columns<'a> {
    report: &'a NewReport,
    seq: i64,
    spool_dropped: i64,
    addresses: String,
}

impl<'a> Columns<'a> {
    fn of(report: &'a NewReport) -> Result<Self, StoreError> {
        Ok(Columns {
            report,
            seq: to_i64("seq", report.seq)?,
            spool_dropped: to_i64("spool_dropped", report.spool_dropped)?,
            addresses: to_json(&report.addresses),
        })
    }
}

/// What a batch adds to one host's row.
struct HostFold<'a> {
    first_seen_ms: i64,
    last_seen_ms: i64,
    /// The report whose descriptive fields win: the newest by
    /// `generated_at_ms`, the later one in the batch on a tie.
    newest: &'a Columns<'a>,
    count: i64,
}

/// The batch's newly stored reports, folded per host: one row per host, so a
/// multi-row upsert never touches a row twice (PostgreSQL refuses that).
fn fold_hosts<'a>(rows: impl Iterator<Item = &'a Columns<'a>>) -> BTreeMap<&'a str, HostFold<'a>> {
    let mut hosts: BTreeMap<&str, HostFold<'_>> = BTreeMap::new();
    for row in rows {
        let r = row.report;
        hosts
            .entry(&r.host_id)
            .and_modify(|h| {
                h.first_seen_ms = h.first_seen_ms.min(r.received_at_ms);
                h.last_seen_ms = h.last_seen_ms.max(r.received_at_ms);
                if r.generated_at_ms >= h.newest.report.generated_at_ms {
                    h.newest = row;
                }
                h.count += 1;
            })
            .or_insert(HostFold {
                first_seen_ms: r.received_at_ms,
                last_seen_ms: r.received_at_ms,
                newest: row,
                count: 1,
            });
    }
    hosts
}

/// `($1, …, $k), ($k+1, …), …` for `rows` rows of `columns` parameters.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            let sep = if column == 0 { "" } else { ", " };
            // Writing to a String cannot fail.
            let _ = write!(sql, "{sep}${}", row * columns + column + 1);
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(host: &str, generated: i64, received: i64, version: &str) -> NewReport {
        NewReport {
            host_id: host.into(),
            generated_at_ms: generated,
            received_at_ms: received,
            agent_version: version.into(),
            ..NewReport::default()
        }
    }

    #[test]
    fn placeholders_number_every_parameter() {
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn fold_widens_seen_times_and_keeps_the_newest_report() {
        let batch = [
            report("a", 20, 105, "new"),
            report("b", 5, 100, "b"),
            report("a", 10, 101, "old"),
            report("a", 20, 103, "tie-later"),
        ];
        let rows: Vec<Columns<'_>> = batch.iter().map(|r| Columns::of(r).unwrap()).collect();
        let hosts = fold_hosts(rows.iter());
        assert_eq!(hosts.len(), 2);
        let a = &hosts["a"];
        assert_eq!((a.first_seen_ms, a.last_seen_ms, a.count), (101, 105, 3));
        assert_eq!(a.newest.report.agent_version, "tie-later");
        assert_eq!(hosts["b"].count, 1);
    }
}
