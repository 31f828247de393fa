//! Group commit: every report the ingest service accepts goes through one
//! writer task, which takes whatever has queued while the previous batch was
//! being written and stores it in one transaction
//! ([`Store::insert_reports`]), then the batch's newly discovered site
//! memberships in a second one ([`Store::add_site_hosts`]). A lone report on
//! a quiet collector is written at once; under load, batches grow with the
//! queue, so the database sees a few large transactions instead of many small
//! ones contending for the write lock (SQLite has a single writer, and its
//! busy handler sleeps).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{InsertOutcome, MAX_BATCH, NewReport, Store, StoreError};

/// What a caller gets back: the outcome, or the batch's shared failure.
pub type Written = Result<InsertOutcome, Arc<StoreError>>;

/// The sending side of the writer task; cheap to clone.
#[derive(Clone)]
pub struct ReportWriter {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    report: NewReport,
    /// Sites to add the report's host to.
    sites: Vec<String>,
    reply: oneshot::Sender<Written>,
}

impl ReportWriter {
    /// Starts the writer task on the current runtime. It ends once every
    /// `ReportWriter` is dropped and the queue is drained. `capacity` bounds the
    /// queue (callers wait for room beyond it).
    pub fn spawn(store: Store, capacity: usize) -> Self {
        let (queue, pending) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_batches(store, pending));
        ReportWriter { queue }
    }

    /// Stores `report` with whatever else is queued, and adds its host to
    /// `sites`; returns once its batch has committed (or failed).
    pub async fn write(&self, report: NewReport, sites: Vec<String>) -> Written {
        let (reply, written) = oneshot::channel();
        self.queue
            .send(Pending {
                report,
                sites,
                reply,
            })
            .await
            .map_err(|_| Arc::new(StoreError::Closed))?;
        written.await.map_err(|_| Arc::new(StoreError::Closed))?
    }
}

async fn write_batches(store: Store, mut pending: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let memberships: Vec<(String, String)> = batch
            .iter_mut()
            .flat_map(|p| {
                let host = p.report.host_id.clone();
                std::mem::take(&mut p.sites)
                    .into_iter()
                    .map(move |site| (site, host.clone()))
            })
            .collect();
        let (reports, replies): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.report, p.reply)).unzip();
        metrics::histogram!("gw502_collector_ingest_batch_reports").record(reports.len() as f64);
        match write_batch(&store, &reports, &memberships).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The caller may have gone (deadline); the report is stored anyway.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

async fn write_batch(
    store: &Store,
    reports: &[NewReport],
    memberships: &[(String, String)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let outcomes = store.insert_reports(reports).await?;
    store.add_site_hosts(memberships).await?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> NewReport {
        NewReport {
            host_id: "web1".into(),
            agent_instance: "i1".into(),
            seq,
            ..NewReport::default()
        }
    }

    #[tokio::test]
    async fn concurrent_writes_are_stored_once_each() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let writer = ReportWriter::spawn(store.clone(), 16);
        let writes = (1..=100)
            .chain([7, 7])
            .map(|seq| writer.write(report(seq), Vec::new()));
        let outcomes = futures::future::join_all(writes).await;
        let duplicates = outcomes
            .iter()
            .filter(|o| o.as_ref().unwrap().duplicate)
            .count();
        assert_eq!(duplicates, 2);
        let host = store.get_host("web1").await.unwrap().unwrap();
        assert_eq!(host.report_count, 100);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_caller_and_the_writer_goes_on() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let writer = ReportWriter::spawn(store.clone(), 16);
        let too_big = NewReport {
            seq: u64::MAX,
            ..report(1)
        };
        assert!(writer.write(too_big, Vec::new()).await.is_err());
        assert!(
            !writer
                .write(report(1), vec!["shop.example".into()])
                .await
                .unwrap()
                .duplicate
        );
        let sites = store.list_sites().await.unwrap();
        assert_eq!(sites[0].name, "shop.example");
        assert_eq!(sites[0].hosts, ["web1"]);
    }
}
