//! Shared by the agent's fail-over and nudge tests: a small gRPC ingest server
//! on loopback (port 0, plaintext) that answers every report the same way,
//! counts and keeps them, and sends the nudges a test asks for.
// Each test binary uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use gw502_proto::v1::ingest_server::{Ingest, IngestServer};
use gw502_proto::v1::{HostReport, Nudge, NudgeRequest, ReportAck};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

/// An ingest server that answers every report with `answer` and counts them.
#[derive(Clone)]
struct Stub {
    answer: Option<Code>,
    calls: Arc<AtomicUsize>,
    reports: Arc<Mutex<Vec<HostReport>>>,
    nudges: broadcast::Sender<Nudge>,
}

type Nudges = std::pin::Pin<Box<dyn Stream<Item = Result<Nudge, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for Stub {
    type NudgesStream = Nudges;

    async fn nudges(&self, _: Request<NudgeRequest>) -> Result<Response<Nudges>, Status> {
        let stream = futures::stream::unfold(self.nudges.subscribe(), |mut rx| async move {
            let nudge = rx.recv().await.ok()?;
            Some((Ok(nudge), rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report(&self, report: Request<HostReport>) -> Result<Response<ReportAck>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.reports.lock().unwrap().push(report.into_inner());
        match self.answer {
            None => Ok(Response::new(ReportAck::default())),
            Some(code) => Err(Status::new(code, "stub says no")),
        }
    }
}

/// A running stub; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    reports: Arc<Mutex<Vec<HostReport>>>,
    nudges: broadcast::Sender<Nudge>,
    _stop: oneshot::Sender<()>,
}

impl Server {
    pub async fn start(at: SocketAddr, answer: Option<Code>) -> Server {
        let listener = TcpListener::bind(at).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let nudges = broadcast::channel(16).0;
        let stub = Stub {
            answer,
            calls: calls.clone(),
            reports: reports.clone(),
            nudges: nudges.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(IngestServer::new(stub))
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );
        Server {
            addr,
            calls,
            reports,
            nudges,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The reports received so far, in order.
    pub fn reports(&self) -> Vec<HostReport> {
        self.reports.lock().unwrap().clone()
    }

    /// Nudges every open stream about `site`; false when no agent listens yet.
    pub fn nudge(&self, site: &str) -> bool {
        let nudge = Nudge {
            site: site.into(),
            at_ms: 0,
        };
        self.nudges.send(nudge).is_ok()
    }
}

/// A report of `web1` with sequence `seq`.
pub fn report(seq: u64) -> HostReport {
    HostReport {
        host_id: "web1".into(),
        agent_instance: "i1".into(),
        seq,
        ..HostReport::default()
    }
}

/// Polls `found` every 50 ms for at most 30 s and returns what it found; the
/// agents under test report on intervals far longer than a poll.
pub async fn until<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(found) = found() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
