//! Runs a collector: opens the store, starts the periodic loops and serves
//! gRPC on an injected listener until the shutdown future resolves (the
//! mini-redis `server::run` shape, so tests bind port 0 and stop cleanly).

use std::future::Future;
use std::sync::Arc;

use gw502_proto::MAX_MESSAGE_BYTES;
use gw502_proto::v1::ingest_server::IngestServer;
use gw502_proto::v1::query_server::QueryServer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::auth::Mode;
use crate::config::{Config, Tls};
use crate::deliveries::StoreDeliveryLog;
use crate::edge::EdgeProber;
use crate::hub::Hub;
use crate::ingest::IngestService;
use crate::query::QueryService;
use crate::routing::Dispatcher;
use crate::store::{Store, StoreError};
use crate::{edge_loop, sites};

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
    /// Plaintext on a non-loopback listener.
    #[error("plaintext is only allowed on loopback, not {0}")]
    PlaintextNotLoopback(std::net::SocketAddr),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// Serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let mut server = Server::builder();
    let mode = match &config.tls {
        Tls::Mutual { ca, cert, key } => {
            let tls = ServerTlsConfig::new()
                .identity(Identity::from_pem(read(cert)?, read(key)?))
                .client_ca_root(Certificate::from_pem(read(ca)?));
            server = server.tls_config(tls)?;
            Mode::Mutual
        }
        Tls::Plaintext if local.ip().is_loopback() => Mode::Plaintext,
        Tls::Plaintext => return Err(ServeError::PlaintextNotLoopback(local)),
    };
    let store = Store::connect(&config.database).await?;
    let stop = Arc::new(Notify::new());
    let (closing_tx, closing) = watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let dispatcher = Dispatcher::spawn(
        Arc::new(config.router.clone()),
        Arc::new(StoreDeliveryLog::new(store.clone())),
        notified(stop.clone()),
    );
    let hub = Arc::new(Hub {
        prober: EdgeProber::new(config.edge.clone(), format!("collector/{}", config.id)),
        store,
        mode,
        events: broadcast::channel(1024).0,
        wake: Notify::new(),
        dirty: Default::default(),
        dispatcher,
        closing,
        config,
    });
    sites::publish_configured(&hub).await?;
    refresh_open(&hub).await?;
    let tasks = [
        tokio::spawn(edge_loop::probe_loop(hub.clone())),
        tokio::spawn(edge_loop::evaluate_loop(hub.clone())),
        tokio::spawn(edge_loop::change_feed(hub.clone())),
        tokio::spawn(edge_loop::retention_loop(hub.clone())),
    ];
    tracing::info!(listen = %local, id = %hub.config.id, mode = ?hub.mode, "collector serving");
    let ingest = IngestServer::new(IngestService::new(hub.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let query = QueryServer::new(QueryService::new(hub.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let result = server
        .add_service(ingest)
        .add_service(query)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    stop.notify_waiters();
    for task in tasks {
        task.abort();
    }
    hub.store.close().await;
    result.map_err(ServeError::from)
}

/// Hands the incidents open in the store to the dispatcher, so Alertmanager
/// keeps hearing about them after a restart.
async fn refresh_open(hub: &Hub) -> Result<(), StoreError> {
    let views = sites::site_views(hub).await?;
    let open = hub.store.open_incidents(None).await?;
    hub.dispatcher.refresh(open.iter().map(|row| {
        let labels = views
            .iter()
            .find(|v| v.name == row.site)
            .map(|v| v.labels.clone())
            .unwrap_or_default();
        (row.to_proto(), labels)
    }));
    Ok(())
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
