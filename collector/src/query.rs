//! The `Query` service: what gw502ctl reads. Operator certificates only.
//!
//! Every RPC passes one gate, [`QueryService::gate`], which admits the
//! caller and resolves what its tenant scope lets it see
//! ([`Visibility`]); each answer is then cut to that: list queries hand
//! the visible sites to the store, reads by id of something outside the
//! scope answer NOT_FOUND like a missing one, and watches drop events of
//! other tenants.

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
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use crate::attribution;
use crate::hub::Hub;
use crate::incidents::{host_state, site_evidence};
use crate::ingest::store_unavailable;
use crate::sites::{HostIndex, SiteView, site_views, url_host};
use crate::store::{DeliveryRow, HostRow, IncidentFilter, IncidentRow};
use crate::tenancy::{Labels, Visibility};

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

    /// The gate of every RPC: admits operators and resolves what they may see.
    async fn gate<T>(&self, request: &Request<T>) -> Result<Visibility, Status> {
        let reader = self.hub.mode.require_operator(request)?;
        Visibility::resolve(&self.hub, reader)
            .await
            .map_err(store_unavailable)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<IncidentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Query for QueryService {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        let seen = self.gate(&request).await?;
        let hosts = self
            .hub
            .store
            .list_hosts()
            .await
            .map_err(store_unavailable)?;
        let now = now_ms();
        Ok(Response::new(ListHostsResponse {
            hosts: hosts
                .iter()
                .filter(|h| seen.sees_host(&h.host_id))
                .map(|h| host_summary(h, now, &seen))
                .collect(),
        }))
    }

    async fn get_host(
        &self,
        request: Request<GetHostRequest>,
    ) -> Result<Response<HostDetail>, Status> {
        let seen = self.gate(&request).await?;
        let id = &request.get_ref().host_id;
        if !seen.sees_host(id) {
            return Err(seen.refuse("host", id, format!("no host {id:?}")));
        }
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
            summary: Some(host_summary(&host, now_ms(), &seen)),
            state: Some(state),
        }))
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        let seen = self.gate(&request).await?;
        let mut sites = Vec::new();
        let views = site_views(&self.hub).await.map_err(store_unavailable)?;
        for view in views.into_iter().filter(|v| seen.sees_site(&v.name)) {
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
        let seen = self.gate(&request).await?;
        let r = request.into_inner();
        let wanted: Labels = r.labels.into_iter().collect();
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
            sites: seen.sites_for(&wanted),
        };
        let rows = self
            .hub
            .store
            .list_incidents(&filter)
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(ListIncidentsResponse {
            incidents: rows.iter().map(|row| incident(row, &seen)).collect(),
        }))
    }

    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<IncidentDetail>, Status> {
        let seen = self.gate(&request).await?;
        let id = request.get_ref().id as i64;
        let store = &self.hub.store;
        let row = store.get_incident(id).await.map_err(store_unavailable)?;
        let not_found = || format!("no incident {id}");
        let row = row.ok_or_else(|| Status::not_found(not_found()))?;
        if !seen.sees_site(&row.site) {
            return Err(seen.refuse("incident", &id.to_string(), not_found()));
        }
        let history = store
            .incident_history(id)
            .await
            .map_err(store_unavailable)?;
        let deliveries = store
            .list_deliveries(Some(id), 100)
            .await
            .map_err(store_unavailable)?;
        Ok(Response::new(IncidentDetail {
            incident: Some(incident(&row, &seen)),
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
        let seen = Arc::new(self.gate(&request).await?);
        let site = request.into_inner().site;
        let hub = self.hub.clone();
        let events = BroadcastStream::new(self.hub.events.subscribe());
        let stream = futures::StreamExt::filter_map(events, move |event| {
            let (hub, seen, site) = (hub.clone(), seen.clone(), site.clone());
            async move {
                // A slow watcher missed events; it keeps going with the next ones.
                let mut event = event.ok()?;
                let incident = event.incident.as_mut()?;
                if !site.is_empty() && incident.site != site {
                    return None;
                }
                let fresh;
                let seen = if seen.scope().is_unscoped() && seen.knows_site(&incident.site) {
                    &*seen
                } else {
                    // Sites come and go (discovery): a scoped watch judges
                    // every event by the labels of now.
                    fresh = match Visibility::resolve(&hub, seen.reader().clone()).await {
                        Ok(fresh) => fresh,
                        Err(error) => {
                            tracing::warn!(%error, "cannot resolve a watcher's scope; event not sent");
                            return None;
                        }
                    };
                    &fresh
                };
                if !seen.sees_incident(incident) {
                    return None;
                }
                seen.label(incident);
                Some(Ok(event))
            }
        });
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
        let seen = self.gate(&request).await?;
        let r = request.into_inner();
        let incident = (r.incident_id > 0).then_some(r.incident_id as i64);
        // Another tenant's incident reads like one without deliveries.
        let sites = seen.sites_for(&Labels::new());
        let limit = if r.limit == 0 {
            100
        } else {
            r.limit.min(10_000)
        };
        let rows = self
            .hub
            .store
            .list_deliveries_of_sites(incident, sites.as_deref(), limit)
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
        let seen = self.gate(&request).await?;
        let url = request.into_inner().url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Status::invalid_argument(
                "url must start with http:// or https://",
            ));
        }
        let host = url_host(&url).to_string();
        let views = site_views(&self.hub).await.map_err(store_unavailable)?;
        let found = views
            .into_iter()
            .filter(|v| seen.sees_site(&v.name))
            .find(|v| v.url == url || v.name == host || url_host(&v.url) == host);
        // A scoped caller may explain only its own sites: no probe of
        // anything else, and no word on whether another tenant's site exists.
        if found.is_none() && !seen.scope().is_unscoped() {
            return Err(seen.refuse("site", &url, format!("no site serves {url}")));
        }
        let site = found.unwrap_or_else(|| SiteView {
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
            .probe_site(&probe_site.probe_target(&hosts.serving(&probe_site)))
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

/// The wire form of an incident, with its site's labels.
fn incident(row: &IncidentRow, seen: &Visibility) -> gw502_proto::v1::Incident {
    let mut incident = row.to_proto();
    seen.label(&mut incident);
    incident
}

fn host_summary(host: &HostRow, now: i64, seen: &Visibility) -> HostSummary {
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
        labels: seen.host_labels(&host.host_id).into_iter().collect(),
    }
}
