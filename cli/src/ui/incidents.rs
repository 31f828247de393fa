//! The incident pages: `/` lists open incidents (and, unless `all` is
//! asked, those resolved in the last day) with the filters of
//! `gw502ctl incidents`; `/incidents/{id}` shows one incident: the request
//! chain, the verdict, the evidence as a timeline, earlier verdicts and
//! deliveries. Both render the `--json` contract types.

use gw502_proto::v1 as pb;
use gw502_vocab::{Layer, Owner};
use maud::{Markup, html};
use url::form_urlencoded;

use super::page::{Nav, Page, ago, badge, or_dash, query, seg, status_word};
use super::upstream::Upstream;
use crate::client::request;
use crate::error::CtlError;
use crate::json::{self, IncidentJson};
use crate::since::parse_since;

/// How far back `/` shows resolved incidents when `all` is not asked.
const RECENT_MS: i64 = 86_400_000;

/// The filters of `gw502ctl incidents`, as query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `all=on`: include resolved incidents.
    pub all: bool,
    /// `site=`.
    pub site: String,
    /// `layer=`.
    pub layer: String,
    /// `owner=`.
    pub owner: String,
    /// `since=`: `30d`, `12h`, ... or RFC 3339.
    pub since: String,
    /// `label=KEY=VALUE`, as `--label`: the site must carry the label.
    pub label: String,
}

impl Filters {
    /// Reads the filters from a query string; unknown keys are ignored.
    pub fn parse(query: Option<&str>) -> Self {
        let mut f = Filters::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = v.trim().to_owned();
            match k.as_ref() {
                "all" => f.all = matches!(v.as_str(), "on" | "true" | "1"),
                "site" => f.site = v,
                "layer" => f.layer = v,
                "owner" => f.owner = v,
                "since" => f.since = v,
                "label" => f.label = v,
                _ => {}
            }
        }
        f
    }

    /// The collector request; a bad `since` or layer is a 400 page.
    pub fn request(&self, now_ms: i64) -> Result<pb::ListIncidentsRequest, CtlError> {
        if !self.layer.is_empty() && self.layer.parse::<Layer>().is_err() {
            let known: Vec<&str> = Layer::ALL.iter().map(|l| l.as_str()).collect();
            return Err(CtlError::Config(format!(
                "unknown layer \"{}\": use one of {}",
                self.layer.escape_debug(),
                known.join(", ")
            )));
        }
        let labels = match self.label.as_str() {
            "" => Default::default(),
            l => crate::labels::to_map(&[crate::args::parse_label(l).map_err(CtlError::Config)?]),
        };
        let since_ms = match self.since.as_str() {
            "" => 0,
            s => parse_since(s, now_ms).map_err(CtlError::Config)?,
        };
        Ok(pb::ListIncidentsRequest {
            all: self.all,
            site: self.site.clone(),
            layer: self.layer.clone(),
            owner: self.owner.clone(),
            since_ms,
            limit: 0,
            labels,
        })
    }

    /// Whether any filter besides `all` is set.
    fn narrowed(&self) -> bool {
        !(self.site.is_empty()
            && self.layer.is_empty()
            && self.owner.is_empty()
            && self.since.is_empty()
            && self.label.is_empty())
    }
}

/// `/`.
pub async fn list(up: &Upstream, raw_query: Option<&str>, now_ms: i64) -> Result<Page, CtlError> {
    let filters = Filters::parse(raw_query);
    let req = filters.request(now_ms)?;
    let mut conn = up.connection().await?;
    let main = conn
        .query
        .list_incidents(request(req.clone()))
        .await
        .map_err(|s| conn.error(&s, "no incidents"))?
        .into_inner()
        .incidents;
    let recent = if filters.all {
        Vec::new()
    } else {
        let recent_req = pb::ListIncidentsRequest {
            all: true,
            since_ms: req.since_ms.max(now_ms - RECENT_MS),
            ..req
        };
        conn.query
            .list_incidents(request(recent_req))
            .await
            .map_err(|s| conn.error(&s, "no incidents"))?
            .into_inner()
            .incidents
            .into_iter()
            .filter(|i| i.state == "resolved")
            .collect()
    };
    let main: Vec<IncidentJson> = main.iter().map(json::incident).collect();
    let recent: Vec<IncidentJson> = recent.iter().map(json::incident).collect();
    let live = format!("/events?{}", query(&[("site", &filters.site)]));
    Ok(Page {
        title: "Incidents".into(),
        nav: Nav::Incidents,
        live: Some(live.trim_end_matches('?').to_owned()),
        body: list_body(&filters, &main, &recent, now_ms),
    })
}

/// The body of `/`.
pub fn list_body(
    f: &Filters,
    main: &[IncidentJson],
    recent: &[IncidentJson],
    now_ms: i64,
) -> Markup {
    let heading = if f.all {
        "All incidents"
    } else {
        "Open incidents"
    };
    html! {
        h1 { "Incidents" }
        form.filters method="get" action="/" {
            label { "Site" input type="text" name="site" value=(f.site) placeholder="any"; }
            label { "Layer"
                select name="layer" {
                    option value="" selected[f.layer.is_empty()] { "any" }
                    @for l in Layer::ALL {
                        option value=(l.as_str()) selected[f.layer == l.as_str()] { (l.as_str()) }
                    }
                }
            }
            label { "Owner" input type="text" name="owner" value=(f.owner) placeholder="any" list="owners"; }
            datalist id="owners" { @for o in Owner::ALL { option value=(o.as_str()) {} } }
            label { "Label" input type="text" name="label" value=(f.label) placeholder="customer=acme"; }
            label { "Updated since" input type="text" name="since" value=(f.since) placeholder="e.g. 12h, 7d"; }
            label.check { input type="checkbox" name="all" checked[f.all]; "include resolved" }
            button type="submit" { "Filter" }
            @if f.narrowed() || f.all { a.reset href="/" { "reset" } }
        }
        section.card {
            h2 { (heading) " " span.count { (main.len()) } }
            (table(main, now_ms, if f.all { "no incidents match" } else { "no open incidents" }))
        }
        @if !f.all {
            section.card {
                h2 { "Resolved in the last 24 hours " span.count { (recent.len()) } }
                (table(recent, now_ms, "none"))
            }
        }
    }
}

fn table(list: &[IncidentJson], now_ms: i64, empty: &str) -> Markup {
    html! {
        @if list.is_empty() {
            p.empty { (empty) }
        } @else {
            table.incidents {
                thead { tr {
                    th { "id" } th { "state" } th { "site" } th { "status" } th { "layer" }
                    th { "cause" } th { "host" } th { "owner" } th { "opened" }
                } }
                tbody {
                    @for i in list {
                        tr data-incident=(i.id) data-layer=(i.verdict.layer) {
                            td { a href={ "/incidents/" (i.id) } { "#" (i.id) } }
                            td { (badge(&i.state)) }
                            td { a href={ "/?" (query(&[("site", &i.site)])) } { (i.site) } }
                            td.num { (status_word(i.verdict.status)) }
                            td { span class={ "layer layer-" (i.verdict.layer) } { (i.verdict.layer) } }
                            td { a href={ "/incidents/" (i.id) } { (i.verdict.cause) } }
                            td { @if i.host.is_empty() { span.none { "–" } } @else { a href={ "/hosts/" (seg(&i.host)) } { (i.host) } } }
                            td { (or_dash(&i.verdict.owner)) }
                            td title=(i.opened_at.clone().unwrap_or_default()) { (ago(&i.opened_at, now_ms)) " ago" }
                        }
                    }
                }
            }
        }
    }
}

/// `/incidents/{id}`.
pub async fn show(up: &Upstream, id: u64, now_ms: i64) -> Result<Page, CtlError> {
    let mut conn = up.connection().await?;
    let not_found = format!("no incident {id}");
    let detail = conn
        .query
        .get_incident(request(pb::GetIncidentRequest { id }))
        .await
        .map_err(|s| conn.error(&s, &not_found))?
        .into_inner();
    let d = json::incident_detail(&detail).ok_or(CtlError::NotFound(not_found))?;
    let live = format!(
        "/events?{}",
        query(&[("site", &d.incident.site), ("incident", &id.to_string())])
    );
    Ok(Page {
        title: format!("Incident #{id}"),
        nav: Nav::Incidents,
        live: Some(live),
        body: super::incident::body(&d, now_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_collector_request() {
        let f = Filters::parse(Some(
            "site=shop.example&layer=handoff&label=customer%3Dacme&all=on",
        ));
        let req = f.request(0).unwrap();
        assert!(req.all);
        assert_eq!(req.site, "shop.example");
        assert_eq!(req.layer, "handoff");
        assert_eq!(req.labels.get("customer").map(String::as_str), Some("acme"));
        assert!(f.narrowed());

        let bad = Filters::parse(Some("label=nokey")).request(0).unwrap_err();
        assert_eq!(bad.exit_code(), 64, "{bad}");
        assert!(Filters::parse(Some("layer=moon")).request(0).is_err());
        assert!(!Filters::parse(None).narrowed());
    }
}
