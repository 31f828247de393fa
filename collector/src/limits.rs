//! Size limits on what agents send, and a log line for every refusal.
//!
//! Two bounds apply to a report. The gRPC message limit
//! ([`gw502_proto::MAX_MESSAGE_BYTES`], 4 MiB) is enforced by tonic before
//! the report is decoded; [`Logged`] wraps a service so that refusal is
//! logged with the caller, since tonic answers `OUT_OF_RANGE` without a
//! word. Below it, a decoded report larger than
//! [`gw502_proto::MAX_REPORT_BYTES`] (1 MiB, the bound every agent cuts its
//! reports to, counting the cut items) is refused by [`check_report_size`]
//! with `INVALID_ARGUMENT` naming the limit. Neither stores anything: the
//! report is refused whole, never silently truncated.

use std::pin::Pin;
use std::task::{Context, Poll};

use gw502_proto::MAX_REPORT_BYTES;
use gw502_proto::v1::HostReport;
use prost::Message;
use tonic::Status;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// Refuses a report larger than [`MAX_REPORT_BYTES`], logging who sent it.
pub fn check_report_size(report: &HostReport) -> Result<(), Status> {
    let len = report.encoded_len();
    if len <= MAX_REPORT_BYTES {
        return Ok(());
    }
    tracing::warn!(
        host = %report.host_id.escape_debug(),
        bytes = len,
        limit = MAX_REPORT_BYTES,
        "refused a report over the report size limit"
    );
    Err(Status::invalid_argument(format!(
        "report is {len} bytes, over the limit of {MAX_REPORT_BYTES} bytes (agents cut their reports to it); nothing was stored"
    )))
}

/// A gRPC service whose `OUT_OF_RANGE` answers (a message over the gRPC
/// size limit) are logged with the path and the caller's identity.
#[derive(Debug, Clone)]
pub struct Logged<S>(pub S);

impl<S: NamedService> NamedService for Logged<S> {
    const NAME: &'static str = S::NAME;
}

type Req = tonic::codegen::http::Request<tonic::body::Body>;
type Resp = tonic::codegen::http::Response<tonic::body::Body>;

impl<S> tonic::codegen::Service<Req> for Logged<S>
where
    S: tonic::codegen::Service<Req, Response = Resp> + Send,
    S::Future: Send + 'static,
{
    type Response = Resp;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let path = request.uri().path().to_owned();
        let caller = caller(&request);
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            let out_of_range = response
                .headers()
                .get("grpc-status")
                .is_some_and(|code| code.as_bytes() == b"11");
            if out_of_range {
                let message = response
                    .headers()
                    .get("grpc-message")
                    .and_then(|m| m.to_str().ok())
                    .unwrap_or_default();
                tracing::warn!(%path, %caller, %message, limit = gw502_proto::MAX_MESSAGE_BYTES, "refused a message over the grpc size limit");
            }
            Ok(response)
        })
    }
}

fn caller(request: &Req) -> String {
    let info = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
    let peer = info
        .and_then(|i| i.get_ref().remote_addr())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let identity = info
        .and_then(|i| i.peer_certs())
        .and_then(|certs| certs.first().cloned())
        .and_then(|leaf| gw502_pki::identity_from_der(leaf.as_ref()).ok())
        .map(|id| id.to_string());
    match identity {
        Some(identity) => format!("{identity} ({peer})"),
        None => peer,
    }
}
