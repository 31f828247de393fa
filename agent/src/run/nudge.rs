//! The agent's ear for nudges: one stream to each configured collector
//! (`Ingest.Nudges`), on which a collector says that a site this host serves
//! started failing its edge probes. The gathering half then reports at once
//! instead of at its next tick, so the evidence that explains a failure
//! reaches the collector while the failure is new.
//!
//! Nudges only bring a report forward: a collector that cannot be reached is
//! retried with backoff, one that predates nudges is left alone, and the
//! reports keep their tick whatever happens here. Every collector is heard,
//! not only the one reports go to: with several collectors on one database,
//! the one holding a site's lease probes it and sends its nudges.

use std::time::Duration;

use tokio::sync::{Notify, watch};
use tonic::Code;

use crate::client::{Backoff, ClientError, CollectorClient, Credentials};
use crate::config::Config;

/// Listens to every collector of `config` until `stop` turns true, ringing
/// `nudged` for each nudge.
pub(super) async fn listen(config: &Config, nudged: &Notify, mut stop: watch::Receiver<bool>) {
    let credentials = match Credentials::load(&config.transport) {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::warn!(%error, "no nudges: reporting on the tick only");
            return;
        }
    };
    let ears = config
        .collectors
        .iter()
        .map(|address| follow(address, &config.host_id, &credentials, nudged));
    tokio::select! {
        _ = futures::future::join_all(ears) => {}
        _ = stop.wait_for(|stop| *stop) => {}
    }
}

/// Follows `address`'s nudge stream for `host_id`, reconnecting with backoff.
async fn follow(address: &str, host_id: &str, credentials: &Credentials, nudged: &Notify) {
    let mut client = match CollectorClient::listener(address, credentials) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(collector = address, %error, "no nudges from this collector");
            return;
        }
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        match client.nudges(host_id).await {
            Ok(mut stream) => {
                backoff.reset();
                while let Ok(Some(nudge)) = stream.message().await {
                    tracing::debug!(collector = address, site = %nudge.site, "nudged: reporting now");
                    metrics::counter!("gw502_agent_nudges_total").increment(1);
                    nudged.notify_one();
                }
            }
            Err(ClientError::Status(status)) if status.code() == Code::Unimplemented => {
                tracing::info!(
                    collector = address,
                    "collector sends no nudges (an older version); reporting on the tick only"
                );
                return;
            }
            Err(error) => tracing::debug!(collector = address, %error, "nudge stream not open"),
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
