//! Shared by the agent's fail-over tests: a small gRPC ingest server on
//! loopback (port 0, plaintext) that answers every report the same way and
//! counts them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gw502_proto::v1::ingest_server::{Ingest, IngestServer};
use gw502_proto::v1::{HostReport, ReportAck};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

/// An ingest server that answers every report with `answer` and counts them.
#[derive(Clone)]
struct Stub {
    answer: Option<Code>,
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl Ingest for Stub {
    async fn report(&self, _: Request<HostReport>) -> Result<Response<ReportAck>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
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
    _stop: oneshot::Sender<()>,
}

impl Server {
    pub async fn start(at: SocketAddr, answer: Option<Code>) -> Server {
        let listener = TcpListener::bind(at).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let stub = Stub {
            answer,
            calls: calls.clone(),
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
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
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
