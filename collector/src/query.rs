//! The `Query` service: what gw502ctl reads. Operator certificates only.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use gw502_proto::v1::query_server::Query;
use gw502_proto::v1::{
    ExplainRequest, ExplainResponse, GetHostRequest, GetIncidentRequest, HostDetail, HostSummary,
    IncidentDetail, IncidentEvent, ListDeliveriesRequest, ListDeliveriesResponse, ListHostsRequest,
    ListHostsResponse, ListIncidentsRequest, ListIncidentsResponse, ListSitesRequest,
    ListSitesResponse, Site, Verdict, VerdictChange, WatchIncidentsRequest,
};
use gw502_vocab::clock::now_ms;
use prost::Message;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use crate::attribution;
use crate::hub::Hub;
use crate::incidents::{host_state, site_evidence};
use crate::ingest::store_unavailable;
use crate::sites::{HostIndex, SiteView, site_views, url_host};
use crate::store::{DeliveryRow, HostRow, IncidentFilter, IncidentRow};

/// Serves `gw502.v1.Query`.
#[derive(Clone)]
pub struct QueryService {
    hub: Arc<Hub>,
}

impl QueryService {
    /// A service over the shared collector state.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }

    fn window_start(&self) -> i64 {
        now_ms() - self.hub.config.window.as_millis() as i64
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<IncidentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        self.hub.mode.require_operator(&request)?;
        let hosts = self
            .hub
            .store
            .list_hosts()
            .await
            .map_err(store_unavailable)?;
        let now = now_ms();
        Ok(Response::new(ListHostsResponse {
            hosts: hosts.iter().map(|h| host_summary(h, now)).collect(),
        }))
    }

    async fn get_host(
        &self,
        request: Request<GetHostRequest>,
    ) -> Result<Response<HostDetail>, Status> {
        self.hub.mode.require_operator(&request)?;
        let id = &request.get_ref().host_id;
        let host = self
            .hub
            .store
            .get_host(id)
            .await
            .map_err(store_unavailable)?;
        let host = host.ok_or_else(|| Status::not_found(format!("no host {id:?}")))?;
        let state = host_state(&self.hub, id, self.window_start())
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(HostDetail {
            summary: Some(host_summary(&host, now_ms())),
            state: Some(state),
        }))
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        self.hub.mode.require_operator(&request)?;
        let mut sites = Vec::new();
        for view in site_views(&self.hub).await.map_err(store_unavailable)? {
            let last_probe = self
                .hub
                .store
                .observations_since(&view.name, self.window_start())
                .await
                .map_err(store_unavailable)?
                .last()
                .and_then(|row| gw502_proto::v1::EdgeObservation::decode(row.body.as_slice()).ok());
            sites.push(Site {
                name: view.name,
                url: view.url,
                origin: view.origin,
                hosts: view.hosts,
                labels: view.labels.into_iter().collect(),
                last_probe,
            });
        }
        Ok(Response::new(ListSitesResponse { sites }))
    }

    async fn list_incidents(
        &self,
        request: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        self.hub.mode.require_operator(&request)?;
        let r = request.into_inner();
        let some = |s: String| (!s.is_empty()).then_some(s);
        let filter = IncidentFilter {
            all: r.all,
            site: some(r.site),
            layer: some(r.layer),
            owner: some(r.owner),
            since_ms: (r.since_ms > 0).then_some(r.since_ms),
            limit: if r.limit == 0 {
                500
            } else {
                r.limit.min(10_000)
            },
        };
        let rows = self
            .hub
            .store
            .list_incidents(&filter)
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(ListIncidentsResponse {
            incidents: rows.iter().map(IncidentRow::to_proto).collect(),
        }))
    }

    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<IncidentDetail>, Status> {
        self.hub.mode.require_operator(&request)?;
        let id = request.get_ref().id as i64;
        let store = &self.hub.store;
        let row = store.get_incident(id).await.map_err(store_unavailable)?;
        let row = row.ok_or_else(|| Status::not_found(format!("no incident {id}")))?;
        let history = store
            .incident_history(id)
            .await
            .map_err(store_unavailable)?;
        let deliveries = store
            .list_deliveries(Some(id), 100)
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(IncidentDetail {
            incident: Some(row.to_proto()),
            history: history
                .iter()
                .map(|h| VerdictChange {
                    at_ms: h.at_ms,
                    verdict: Verdict::decode(h.verdict.as_slice()).ok(),
                    state: h.state.clone(),
                })
                .collect(),
            deliveries: deliveries.iter().map(DeliveryRow::to_proto).collect(),
        }))
    }

    type WatchIncidentsStream = EventStream;

    async fn watch_incidents(
        &self,
        request: Request<WatchIncidentsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.hub.mode.require_operator(&request)?;
        let site = request.into_inner().site;
        let stream =
            BroadcastStream::new(self.hub.events.subscribe()).filter_map(
                move |event| match event {
                    Ok(event)
                        if site.is_empty()
                            || event.incident.as_ref().is_some_and(|i| i.site == site) =>
                    {
                        Some(Ok(event))
                    }
                    Ok(_) => None,
                    // A slow watcher missed events; it keeps going with the next ones.
                    Err(_) => None,
                },
            );
        let mut closing = self.hub.closing.clone();
        let stream = futures::StreamExt::take_until(stream, async move {
            let _ = closing.wait_for(|closing| *closing).await;
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        self.hub.mode.require_operator(&request)?;
        let r = request.into_inner();
        let incident = (r.incident_id > 0).then_some(r.incident_id as i64);
        let limit = if r.limit == 0 {
            100
        } else {
            r.limit.min(10_000)
        };
        let rows = self
            .hub
            .store
            .list_deliveries(incident, limit)
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: rows.iter().map(DeliveryRow::to_proto).collect(),
        }))
    }

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<ExplainResponse>, Status> {
        self.hub.mode.require_operator(&request)?;
        let url = request.into_inner().url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Status::invalid_argument(
                "url must start with http:// or https://",
            ));
        }
        let host = url_host(&url).to_string();
        let views = site_views(&self.hub).await.map_err(store_unavailable)?;
        let site = views
            .into_iter()
            .find(|v| v.url == url || v.name == host || url_host(&v.url) == host)
            .unwrap_or_else(|| SiteView {
                name: host.clone(),
                url: url.clone(),
                ..SiteView::default()
            });
        let hosts = self
            .hub
            .store
            .list_hosts()
            .await
            .map_err(store_unavailable)?;
        let probe_site = SiteView {
            url: url.clone(),
            ..site.clone()
        };
        let hosts = HostIndex::new(&hosts);
        let observations = self
            .hub
            .prober
            .probe_site(&probe_site.probe_target(&hosts))
            .await;
        let evidence = site_evidence(&self.hub, &site, &hosts, now_ms(), observations.clone())
            .await
            .map_err(store_unavailable)?;
        let verdicts = attribution::attribute(&evidence);
        Ok(Response::new(ExplainResponse {
            site: site.name,
            observations,
            verdicts: verdicts.iter().map(Verdict::from).collect(),
            hosts: evidence.hosts.iter().map(|h| h.host_id.clone()).collect(),
        }))
    }
}

fn host_summary(host: &HostRow, now: i64) -> HostSummary {
    let interval = i64::from(host.interval_ms.max(1000));
    HostSummary {
        host_id: host.host_id.clone(),
        agent_version: host.agent_version.clone(),
        first_seen_ms: host.first_seen_ms,
        last_seen_ms: host.last_seen_ms,
        interval_ms: host.interval_ms,
        reports: host.report_count,
        stale: now - host.last_seen_ms > 3 * interval,
        spool_dropped: host.spool_dropped,
        addresses: host.addresses.clone(),
    }
}
