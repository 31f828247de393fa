//! The `Ingest` service: agents deliver reports here.
//!
//! Each report is bound to the caller's certificate (a host may only report
//! as itself), stored idempotently by `(host_id, agent_instance, seq)` through
//! the group-committing [`ReportWriter`] together with the sites its proxy
//! config newly names (`server_name` → hosts, see `discovery.rs`), and then
//! wakes the evaluator, which re-attributes the sites this host serves.
//! Replayed reports are stored as history and never wake the evaluator.
//! Every time in a report is moved onto the collector's clock first when the
//! agent's clock is off (`clock.rs`).
//!
//! Admission is bounded: at most [`MAX_IN_FLIGHT`] reports are handled at
//! once; the rest are shed at once with `RESOURCE_EXHAUSTED`, which the agent
//! keeps in its spool and retries, so overload costs latency and bounded
//! memory, never reports. Admitted reports queue for the writer, which
//! stores whatever has queued in one transaction (see docs/BENCHMARKS.md for
//! what group commit changed).
//!
//! `Nudges` is the other way round: each agent holds one stream open, bound to
//! its certificate like its reports, and hears when a site it serves starts
//! failing its edge probes ([`Hub::probed`]), so it reports at once.

mod clock;
mod discovery;
mod writer;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::Stream;
use gw502_proto::v1::ingest_server::Ingest;
use gw502_proto::v1::{EdgeObservation, HostReport, Nudge, NudgeRequest, ReportAck};
use gw502_vocab::clock::now_ms;
use prost::Message;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use crate::hub::Hub;
use crate::store::{NewReport, ObservationRow};

use clock::Clocks;
use discovery::Discovered;

pub use writer::ReportWriter;

/// Reports handled at once; more are shed.
pub const MAX_IN_FLIGHT: usize = 2048;

/// Serves `gw502.v1.Ingest`.
#[derive(Clone)]
pub struct IngestService {
    hub: Arc<Hub>,
    writer: ReportWriter,
    discovered: Arc<Discovered>,
    clocks: Arc<Clocks>,
    in_flight: Arc<AtomicUsize>,
}

impl IngestService {
    /// A service over the shared collector state; starts its report writer
    /// on the current runtime.
    pub fn new(hub: Arc<Hub>) -> Self {
        let writer = ReportWriter::spawn(hub.store.clone(), MAX_IN_FLIGHT);
        Self {
            hub,
            writer,
            discovered: Arc::default(),
            clocks: Arc::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Admits one more report, or sheds it when too many are in flight.
    fn admit(&self) -> Result<InFlight, Status> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(overloaded("too many reports in flight"));
        }
        Ok(InFlight(self.in_flight.clone()))
    }
}

/// One admitted report; leaving frees its place.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The report was shed: the agent keeps it in its spool and retries.
fn overloaded(why: &'static str) -> Status {
    metrics::counter!("gw502_collector_reports_shed_total", "why" => why).increment(1);
    Status::resource_exhausted(format!(
        "collector overloaded ({why}); keep the report and retry later"
    ))
}

type NudgeStream = Pin<Box<dyn Stream<Item = Result<Nudge, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type NudgesStream = NudgeStream;

    async fn nudges(
        &self,
        request: Request<NudgeRequest>,
    ) -> Result<Response<NudgeStream>, Status> {
        let host_id = request.get_ref().host_id.clone();
        check_host_id(&host_id)?;
        self.hub.mode.require_agent(&request, &host_id)?;
        let nudges = BroadcastStream::new(self.hub.nudges.subscribe());
        // A nudge missed while the stream lagged is only a report at the next tick.
        let stream = futures::StreamExt::filter_map(nudges, move |nudge| {
            let nudge = nudge.ok().filter(|n| n.host_id == host_id);
            std::future::ready(nudge.map(|n| Ok(n.nudge)))
        });
        let mut closing = self.hub.closing.clone();
        let stream = futures::StreamExt::take_until(stream, async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report(&self, request: Request<HostReport>) -> Result<Response<ReportAck>, Status> {
        let started = Instant::now();
        let report = request.get_ref();
        check_host_id(&report.host_id)?;
        if report.seq == 0 || report.agent_instance.is_empty() {
            return Err(Status::invalid_argument(
                "agent_instance and seq (from 1) are required",
            ));
        }
        if i64::try_from(report.seq).is_err() || i64::try_from(report.spool_dropped).is_err() {
            return Err(Status::invalid_argument(
                "seq and spool_dropped must be below 2^63",
            ));
        }
        self.hub.mode.require_agent(&request, &report.host_id)?;
        crate::limits::check_report_size(report)?;
        let mut report = request.into_inner();
        let _admitted = self.admit()?;
        let received_at_ms = now_ms();
        let reading = self.clocks.correct(&mut report, received_at_ms);
        let sites = self.discovered.unknown(&report);
        let report_row = NewReport {
            host_id: report.host_id.clone(),
            agent_instance: report.agent_instance.clone(),
            seq: report.seq,
            agent_version: report.agent_version.clone(),
            generated_at_ms: report.generated_at_ms,
            received_at_ms,
            replayed: report.replayed,
            full_snapshot: report.full_snapshot,
            interval_ms: report.interval_ms,
            spool_dropped: report.spool_dropped,
            addresses: report.addresses.clone(),
            body: report.encode_to_vec(),
            cross_probes: if report.replayed {
                Vec::new()
            } else {
                cross_probes(&report)
            },
        };
        let outcome = self
            .writer
            .write(report_row, sites.clone())
            .await
            .map_err(store_unavailable)?;
        if let Some(reading) = reading.filter(|_| !outcome.duplicate) {
            self.clocks.record(reading);
        }
        self.discovered.remember(&report.host_id, sites);
        metrics::counter!("gw502_collector_reports_total", "replayed" => report.replayed.to_string()).increment(1);
        if !outcome.duplicate && !report.replayed {
            for site in cross_probe_sites(&report) {
                self.hub.wake_site(site);
            }
            self.hub.wake_host(&report.host_id, &report.addresses);
        }
        metrics::histogram!("gw502_collector_ingest_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(Response::new(ReportAck {
            duplicate: outcome.duplicate,
            received_at_ms,
        }))
    }
}

fn check_host_id(host_id: &str) -> Result<(), Status> {
    gw502_vocab::name::check_name(host_id).map_err(|_| {
        Status::invalid_argument("host_id must be 1-253 characters of A-Z a-z 0-9 . _ -")
    })
}

/// A database failure: the agent keeps the report in its spool and retries.
pub fn store_unavailable(error: impl std::fmt::Display) -> Status {
    metrics::counter!("gw502_collector_ingest_errors_total").increment(1);
    tracing::error!(%error, "database unavailable");
    Status::unavailable("collector database unavailable; retry later")
}

/// The report's cross probes (observations of a site from this host's
/// vantage point) as observation rows, the agent named as the vantage.
fn cross_probes(report: &HostReport) -> Vec<(String, ObservationRow)> {
    let vantage = format!("agent/{}", report.host_id);
    report
        .cross_probes
        .iter()
        .flat_map(|section| &section.observations)
        .map(|observation| {
            let observation = EdgeObservation {
                vantage: vantage.clone(),
                ..observation.clone()
            };
            (
                observation.site.clone(),
                ObservationRow::from_observation(&observation),
            )
        })
        .collect()
}

fn cross_probe_sites(report: &HostReport) -> impl Iterator<Item = &str> {
    report
        .cross_probes
        .iter()
        .flat_map(|section| &section.observations)
        .map(|observation| observation.site.as_str())
}
