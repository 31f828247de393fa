//! Live updates: `/events` relays the collector's `WatchIncidents` stream as
//! server-sent events (`event: incident`, the `incidents watch --json` line
//! as data), and `/static/live.js` reloads the page when one arrives. A page
//! without the script is simply static.
//!
//! The stream ends when the collector's does; the browser's `EventSource`
//! then reconnects by itself after the advertised `retry`.

use std::convert::Infallible;

use futures::{StreamExt, stream};
use gw502_proto::v1 as pb;
use http_body_util::StreamBody;
use hyper::body::{Bytes, Frame};
use url::form_urlencoded;

use super::upstream::Upstream;
use crate::error::CtlError;
use crate::json;

/// The script, served at `/static/live.js`.
pub const SCRIPT: &str = include_str!("live.js");

/// The event stream of `/events?site=S&incident=N` (both optional).
pub type Events = StreamBody<stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// Opens the collector's watch for the query's site; events of other
/// incidents are left out when `incident` is given.
pub async fn events(up: &Upstream, raw_query: Option<&str>) -> Result<Events, CtlError> {
    let mut site = String::new();
    let mut incident: Option<u64> = None;
    for (k, v) in form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "site" => site = v.into_owned(),
            "incident" => incident = v.parse().ok(),
            _ => {}
        }
    }
    let mut conn = up.connection().await?;
    let watch = conn
        .query
        .watch_incidents(pb::WatchIncidentsRequest { site })
        .await
        .map_err(|s| conn.error(&s, "no such site"))?
        .into_inner();
    let hello = stream::once(async {
        Ok(Frame::data(Bytes::from_static(
            b"retry: 5000\n: watching\n\n",
        )))
    });
    let events = watch
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(move |r| {
            let line = r
                .ok()
                .filter(|e| {
                    incident.is_none_or(|id| e.incident.as_ref().is_some_and(|i| i.id == id))
                })
                .and_then(|e| json::incident_event(&e))
                .and_then(|j| serde_json::to_string(&j).ok())
                .map(|data| {
                    Ok(Frame::data(Bytes::from(format!(
                        "event: incident\ndata: {data}\n\n"
                    ))))
                });
            std::future::ready(line)
        });
    Ok(StreamBody::new(hello.chain(events).boxed()))
}
