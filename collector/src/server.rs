//! Runs a collector: opens the store, starts the periodic loops and serves
//! gRPC on an injected listener until the shutdown future resolves (the
//! mini-redis `server::run` shape, so tests bind port 0 and stop cleanly).
//!
//! Shutdown drains within `shutdown_grace`: the listener stops accepting,
//! reports already being received are stored, webhook deliveries in flight
//! finish and are recorded; then the collector gives its site leases and
//! delivery claims back (another collector takes them at once) and returns
//! `Ok`, exit code 0. What the grace cuts off is not lost: an agent keeps an
//! unacknowledged report in its spool, and an unrecorded delivery is sent
//! again under the same idempotency key. Configs received on the reload
//! channel ([`serve`]) are put in force by [`crate::reload::apply`].

use std::future::Future;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use gw502_proto::MAX_MESSAGE_BYTES;
use gw502_proto::v1::ingest_server::IngestServer;
use gw502_proto::v1::query_server::QueryServer;
use gw502_supervise::{Policy, Supervisor};
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::auth::Mode;
use crate::config::{Config, Tls};
use crate::deliveries::StoreDeliveryLog;
use crate::edge::EdgeProber;
use crate::hub::{Hub, Live};
use crate::ingest::IngestService;
use crate::limits::Logged;
use crate::query::QueryService;
use crate::revocation::{self, CrlError, Revocation};
use crate::routing::Dispatcher;
use crate::store::{Store, StoreError};
use crate::{deliveries, edge_loop, leases, reload, sites, tls};

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS material could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The revocation list at start is unusable (starting without it would
    /// let revoked certificates in).
    #[error("revocation list: {0}")]
    Crl(#[from] CrlError),
    /// The collector's certificate or key is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// Plaintext on a non-loopback listener.
    #[error("plaintext is only allowed on loopback, not {0}")]
    PlaintextNotLoopback(std::net::SocketAddr),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// A background loop kept failing; the collector stopped serving so that
    /// systemd restarts it rather than it answering without evaluation.
    #[error("loop {0} kept failing, collector stopped")]
    LoopGaveUp(&'static str),
}

/// The counter of background loop restarts, labelled `loop`.
pub const LOOP_RESTARTS: &str = "gw502_collector_loop_restarts_total";

/// Serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve(config, listener, shutdown, None).await
}

/// Serves until `shutdown` resolves, putting each config received on
/// `reloads` in force (sites and routing; see [`crate::reload`]).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: Option<mpsc::Receiver<Config>>,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let mut server = Server::builder();
    let (mode, incoming) = match &config.tls {
        Tls::Mutual { ca, cert, key } => {
            let crl = config.crl.clone().unwrap_or_else(|| crl_beside(ca));
            let revocation = Arc::new(Revocation::load(&read(ca)?, &read(cert)?, crl)?);
            let tls = tls::server_config(&read(cert)?, &read(key)?, revocation.clone())
                .map_err(ServeError::Tls)?;
            let incoming = Incoming::Tls(tls::incoming(listener, tls).boxed());
            (Mode::Mutual(revocation), incoming)
        }
        Tls::Plaintext if local.ip().is_loopback() => {
            let incoming = Incoming::Plain(TcpListenerStream::new(listener));
            (Mode::Plaintext, incoming)
        }
        Tls::Plaintext => return Err(ServeError::PlaintextNotLoopback(local)),
    };
    let store = Store::connect(&config.database).await?;
    let stop = Arc::new(Notify::new());
    let (closing_tx, closing) = watch::channel(false);
    let supervisor = Supervisor::new(LOOP_RESTARTS, Policy::default());
    let shutdown = until_stopped(shutdown, &supervisor);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let dispatcher = Dispatcher::spawn(
        Arc::new(config.router.clone()),
        Arc::new(StoreDeliveryLog::new(store.clone())),
        notified(stop.clone()),
        &supervisor,
    );
    let hub = Arc::new(Hub {
        prober: EdgeProber::new(config.edge.clone(), format!("collector/{}", config.id)),
        store,
        mode,
        events: broadcast::channel(1024).0,
        wake: Notify::new(),
        dirty: Default::default(),
        live: Live::new(&config, dispatcher),
        leases: Default::default(),
        outbox: Notify::new(),
        reload_hooks: Default::default(),
        closing: closing.clone(),
        nudges: broadcast::channel(1024).0,
        failing: Default::default(),
        config,
    });
    if let Some(revocation) = hub.mode.revocation().cloned() {
        // SIGHUP re-reads the revocation list too, besides the file watch.
        hub.reload_hooks.register(
            "crl",
            Box::new(move |_| {
                revocation::reload_and_log(&revocation)
                    .map(drop)
                    .map_err(|e| vec![e])
            }),
        );
    }
    sites::publish_configured(&hub).await?;
    // Alertmanager keep-alive starts with the first lease round (leases.rs).
    // Leases first, so the first probe round finds the sites it may probe.
    if let Err(error) = leases::claim_all(&hub, hub.config.lease_ttl).await {
        tracing::warn!(%error, "cannot claim site leases");
    }
    let sender = supervisor.spawn("deliveries", looping(&hub, deliveries::sender_loop));
    let crl_watch = match &hub.mode {
        Mode::Mutual(revocation) => {
            let revocation = revocation.clone();
            Some(supervisor.spawn("crl_watch", move || {
                let watched = revocation::watch(revocation.clone(), revocation::POLL_INTERVAL);
                async move {
                    watched.await;
                    Ok::<(), StoreError>(())
                }
            }))
        }
        Mode::Plaintext => None,
    };
    let tasks = [
        supervisor.spawn("site_leases", looping(&hub, leases::lease_loop)),
        supervisor.spawn("edge_probes", looping(&hub, edge_loop::probe_loop)),
        supervisor.spawn("evaluation", looping(&hub, edge_loop::evaluate_loop)),
        supervisor.spawn("change_feed", looping(&hub, edge_loop::change_feed)),
        supervisor.spawn("retention", looping(&hub, edge_loop::retention_loop)),
    ];
    let reloader = reloads.map(|r| tokio::spawn(apply_reloads(hub.clone(), r, supervisor.clone())));
    tracing::info!(listen = %local, id = %hub.config.id, mode = ?hub.mode, "collector serving");
    let ingest = IngestServer::new(IngestService::new(hub.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let query = QueryServer::new(QueryService::new(hub.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let router = server
        .add_service(Logged(ingest))
        .add_service(Logged(query));
    let serving = match incoming {
        Incoming::Tls(incoming) => router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .boxed(),
        Incoming::Plain(incoming) => router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .boxed(),
    };
    let grace = hub.config.shutdown_grace;
    let (result, deadline) = drain_within(serving, closing, grace).await;
    // Deliveries in flight finish (the sender stops claiming once closing).
    if tokio::time::timeout_at(deadline, sender).await.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "deliveries still in flight at the end of the grace, they will be sent again"
        );
    }
    for task in tasks.into_iter().chain(crl_watch) {
        task.abort();
    }
    if let Some(task) = reloader {
        task.abort();
    }
    leases::release_all(&hub).await;
    deliveries::release(&hub).await;
    stop.notify_waiters();
    hub.store.close().await;
    tracing::info!("collector stopped");
    result?;
    match supervisor.gave_up().now_or_never() {
        Some(name) => Err(ServeError::LoopGaveUp(name)),
        None => Ok(()),
    }
}

/// The accepted connections: mTLS streams whose handshake passed the
/// reloading verifier, or plaintext TCP on loopback.
enum Incoming {
    Tls(
        futures::stream::BoxStream<
            'static,
            std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
        >,
    ),
    Plain(TcpListenerStream),
}

/// The CRL a collector watches when `tls.crl` is not set: `crl.pem` beside
/// the CA certificate, where `gw502ctl pki revoke` writes it.
fn crl_beside(ca: &std::path::Path) -> std::path::PathBuf {
    ca.parent()
        .unwrap_or(std::path::Path::new("."))
        .join(gw502_pki::CRL_FILE)
}

/// Resolves when `shutdown` does, or when the supervisor gives up on a loop:
/// then the server stops accepting and [`run`] returns
/// [`ServeError::LoopGaveUp`], a non-zero exit. Exiting (rather than marking
/// gRPC NOT_SERVING) hands recovery to systemd's `Restart=on-failure`, which
/// starts from a clean process, and needs no client to understand health.
fn until_stopped(
    shutdown: impl Future<Output = ()> + Send + 'static,
    supervisor: &Supervisor,
) -> impl Future<Output = ()> + Send + 'static {
    let gave_up = supervisor.gave_up();
    async move {
        tokio::select! {
            () = shutdown => {}
            name = gave_up => {
                tracing::error!(r#loop = name, "a background loop is dead, stopping the collector");
            }
        }
    }
}

/// Runs `serving` until it ends, or until `shutdown_grace` after `closing`
/// turned true; returns its result (`Ok` when the grace cut it off) and
/// the deadline the rest of the drain keeps to.
async fn drain_within<E>(
    serving: impl Future<Output = Result<(), E>>,
    mut closing: watch::Receiver<bool>,
    grace: std::time::Duration,
) -> (Result<(), E>, tokio::time::Instant) {
    tokio::pin!(serving);
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
        tokio::time::Instant::now() + grace
    };
    tokio::pin!(closed);
    let mut deadline = None;
    loop {
        let until = deadline.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            result = &mut serving => {
                let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + grace);
                return (result, deadline);
            }
            at = &mut closed, if deadline.is_none() => deadline = Some(at),
            () = tokio::time::sleep_until(until), if deadline.is_some() => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "requests still in flight at the end of the grace, closing them");
                return (Ok(()), until);
            }
        }
    }
}

/// Puts every config received on `reloads` in force.
async fn apply_reloads(hub: Arc<Hub>, mut reloads: mpsc::Receiver<Config>, supervisor: Supervisor) {
    while let Some(config) = reloads.recv().await {
        if let Err(error) = reload::apply(&hub, config, &supervisor).await {
            tracing::error!(%error, "config reload incomplete");
        }
    }
}

/// A factory for the supervisor: each restart runs `f` on the shared state.
fn looping<Fut: 'static>(
    hub: &Arc<Hub>,
    f: fn(Arc<Hub>) -> Fut,
) -> impl FnMut() -> Fut + Send + 'static {
    let hub = hub.clone();
    move || f(hub.clone())
}

async fn notified(stop: Arc<Notify>) {
    stop.notified().await;
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_forever_stops_the_server() {
        let supervisor = Supervisor::new(LOOP_RESTARTS, Policy::default());
        let stopped = until_stopped(std::future::pending(), &supervisor);
        let dead = supervisor.spawn("evaluation", || async {
            panic!("evaluation bug") as Result<(), StoreError>
        });
        // Five restarts with backoff 1+2+4+8+16 s, then the sixth failure gives up.
        tokio::time::timeout(Duration::from_secs(32), stopped)
            .await
            .expect("server told to stop");
        assert_eq!(dead.await.expect("join"), gw502_supervise::Ended::GaveUp);
        assert_eq!(supervisor.gave_up().now_or_never(), Some("evaluation"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_recovers_keeps_the_server_up() {
        let supervisor = Supervisor::new(LOOP_RESTARTS, Policy::default());
        let stopped = until_stopped(std::future::pending(), &supervisor);
        let mut failures = 2;
        let _flaky = supervisor.spawn("retention", move || {
            failures -= 1;
            let fail = failures >= 0;
            async move {
                if fail {
                    panic!("transient bug");
                }
                std::future::pending::<Result<(), StoreError>>().await
            }
        });
        let outcome = tokio::time::timeout(Duration::from_secs(3600), stopped).await;
        assert!(outcome.is_err(), "the server kept serving");
    }
}
