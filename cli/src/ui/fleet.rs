//! The fleet pages: `/hosts` (every reporting host), `/hosts/{id}` (its
//! units, listeners, proxies, targets, direct probes, DNS, log signals and
//! journal) and `/sites` (each site with its last public probe). They render
//! the `--json` shapes of `gw502ctl hosts`, `hosts show` and `sites`.

use gw502_proto::v1 as pb;
use maud::{Markup, html};

use super::page::{Nav, Page, ago, badge, or_dash, query, seg, status_word, when};
use super::upstream::Upstream;
use crate::client::request;
use crate::error::CtlError;
use crate::json::{self, HostDetailJson, HostJson, HostStateJson, SiteJson};

/// `/hosts`.
pub async fn hosts(up: &Upstream, now_ms: i64) -> Result<Page, CtlError> {
    let mut conn = up.connection().await?;
    let list = conn
        .query
        .list_hosts(request(pb::ListHostsRequest {}))
        .await
        .map_err(|s| conn.error(&s, "no hosts"))?
        .into_inner()
        .hosts;
    let list: Vec<HostJson> = list.iter().map(json::host).collect();
    Ok(Page {
        title: "Hosts".into(),
        nav: Nav::Hosts,
        live: None,
        body: hosts_body(&list, now_ms),
    })
}

fn hosts_body(list: &[HostJson], now_ms: i64) -> Markup {
    html! {
        h1 { "Hosts" }
        section.card {
            @if list.is_empty() {
                p.empty { "no host has reported yet" }
            } @else {
                table {
                    thead { tr { th { "host" } th { "agent" } th { "last report" } th { "reports" } th { "spool dropped" } th { "addresses" } } }
                    tbody {
                        @for h in list {
                            tr {
                                td { a href={ "/hosts/" (seg(&h.host)) } { (h.host) } }
                                td { (or_dash(&h.agent_version)) }
                                td { (ago(&h.last_seen, now_ms)) " ago " @if h.stale { span.badge.bad { "stale" } } }
                                td.num { (h.reports) } td.num { (h.spool_dropped) }
                                td { (h.addresses.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/hosts/{id}`.
pub async fn host(up: &Upstream, id: &str, now_ms: i64) -> Result<Page, CtlError> {
    let mut conn = up.connection().await?;
    let not_found = format!("no host {}", crate::render::escape(id));
    let detail = conn
        .query
        .get_host(request(pb::GetHostRequest {
            host_id: id.to_owned(),
        }))
        .await
        .map_err(|s| conn.error(&s, &not_found))?
        .into_inner();
    let d = json::host_detail(&detail);
    Ok(Page {
        title: format!("Host {}", d.host.host),
        nav: Nav::Hosts,
        live: None,
        body: host_body(&d, now_ms),
    })
}

/// The body of `/hosts/{id}`.
pub fn host_body(d: &HostDetailJson, now_ms: i64) -> Markup {
    let h = &d.host;
    let s = &d.state;
    html! {
        div.title-row {
            h1 { "Host " (h.host) }
            @if h.stale { span.badge.bad { "stale" } } @else { span.badge.good { "reporting" } }
        }
        p.meta {
            "agent " (or_dash(&h.agent_version)) " · last report " (when(&h.last_seen)) " (" (ago(&h.last_seen, now_ms)) " ago)"
            " · every " (crate::render::duration_ms(u64::from(h.interval_ms)))
            " · reports " (h.reports) " · addresses " (or_dash(&h.addresses.join(", ")))
        }
        @if !s.unavailable.is_empty() {
            section.card.warn-card {
                h2 { "Unavailable sources" }
                dl.facts { @for (k, v) in &s.unavailable { dt { (k) } dd { (v) } } }
            }
        }
        (state(s))
    }
}

fn state(s: &HostStateJson) -> Markup {
    html! {
        section.card { h2 { "Units" }
            @if s.units.is_empty() { p.empty { "none watched" } } @else {
                table { thead { tr { th { "unit" } th { "state" } th { "sub" } th { "result" } th { "restarts" } th { "roles" } th { "changed" } } }
                    tbody { @for u in &s.units { tr {
                        td { code { (u.name) } } td { (badge(&u.active_state)) } td { (u.sub_state) } td { (u.result) }
                        td.num { (u.restarts) } td { (u.roles.join(", ")) } td { (when(&u.state_changed_at)) }
                    } } } }
            }
        }
        section.card { h2 { "Listeners" }
            @if s.listeners.is_empty() { p.empty { "none" } } @else {
                table { thead { tr { th { "family" } th { "address" } th { "port" } th { "process" } th { "unit" } th { "queue" } } }
                    tbody { @for l in &s.listeners { tr {
                        td { (l.family) } td { code { (l.address) } } td.num { @if l.port > 0 { (l.port) } @else { "–" } }
                        td { (or_dash(&l.process)) } td { (or_dash(&l.unit)) } td.num { (l.queued) " / " (l.backlog) }
                    } } } }
            }
        }
        section.card { h2 { "Proxies and targets" }
            @for p in &s.proxies {
                p { strong { (p.kind) } " " code { (p.unit) } " · config test "
                    @match p.config_test_ok { Some(true) => span.badge.good { "ok" }, Some(false) => span.badge.bad { "failed" }, None => span.none { "not run" } }
                    " · changed " (when(&p.config_changed_at)) }
                @if !p.config_test_output.is_empty() { pre.detail { (p.config_test_output) } }
            }
            @if s.targets.is_empty() { p.empty { "no upstream targets" } } @else {
                table { thead { tr { th { "protocol" } th { "address" } th { "group" } th { "servers" } th { "location" } } }
                    tbody { @for t in &s.targets { tr {
                        td { (t.protocol) } td { code { (t.address) } } td { (or_dash(&t.group)) }
                        td { (t.server_names.join(", ")) } td { (or_dash(&t.location)) }
                    } } } }
            }
        }
        section.card { h2 { "Direct probes" }
            @if s.probes.is_empty() { p.empty { "none" } } @else {
                table { thead { tr { th { "target" } th { "outcome" } th { "phase" } th { "status" } th { "time" } th { "at" } th { "detail" } } }
                    tbody { @for p in &s.probes { tr {
                        td { code { (p.target) } } td { (badge(&p.outcome)) } td { (p.phase) } td.num { (status_word(p.status)) }
                        td.num { (p.elapsed_ms) " ms" } td { (when(&p.at)) } td { (or_dash(&p.detail)) }
                    } } } }
            }
        }
        @if !s.dns.is_empty() {
            section.card { h2 { "DNS" }
                table { thead { tr { th { "name" } th { "purpose" } th { "addresses" } th { "error" } } }
                    tbody { @for a in &s.dns { tr {
                        td { code { (a.name) } } td { (a.purpose) } td { (a.addresses.join(", ")) } td { (or_dash(&a.error)) }
                    } } } }
            }
        }
        section.card { h2 { "Log signals" }
            @if s.log_signals.is_empty() { p.empty { "no proxy error lines" } } @else {
                @for l in &s.log_signals {
                    div.signal {
                        p { strong { (l.proxy) } " → " code { (or_dash(&l.upstream)) } " · " code { (l.cause) }
                            " · " (l.count) " lines · status " (status_word(l.status))
                            " · " (when(&l.first_at)) " – " (when(&l.last_at)) }
                        @for sample in &l.samples { pre.detail { (sample) } }
                    }
                }
            }
        }
        @if !s.journal.is_empty() {
            section.card { h2 { "Journal" }
                table { thead { tr { th { "at" } th { "unit" } th { "priority" } th { "message" } } }
                    tbody { @for j in &s.journal { tr {
                        td { (when(&j.at)) } td { code { (j.unit) } } td.num { (j.priority) } td { pre.detail { (j.message) } }
                    } } } }
            }
        }
    }
}

/// `/sites`.
pub async fn sites(up: &Upstream, now_ms: i64) -> Result<Page, CtlError> {
    let mut conn = up.connection().await?;
    let list = conn
        .query
        .list_sites(request(pb::ListSitesRequest {}))
        .await
        .map_err(|s| conn.error(&s, "no sites"))?
        .into_inner()
        .sites;
    let list: Vec<SiteJson> = list.iter().map(json::site).collect();
    Ok(Page {
        title: "Sites".into(),
        nav: Nav::Sites,
        live: None,
        body: sites_body(&list, now_ms),
    })
}

fn sites_body(list: &[SiteJson], now_ms: i64) -> Markup {
    html! {
        h1 { "Sites" }
        section.card {
            @if list.is_empty() { p.empty { "no sites configured or discovered" } } @else {
                table { thead { tr { th { "site" } th { "URL" } th { "origin" } th { "hosts" } th { "labels" } th { "last probe" } } }
                    tbody { @for s in list { tr {
                        td { a href={ "/?" (query(&[("site", &s.name), ("all", "on")])) } { (s.name) } }
                        td { code { (s.url) } }
                        td { (s.origin) }
                        td { @for (n, h) in s.hosts.iter().enumerate() {
                            @if n > 0 { ", " } a href={ "/hosts/" (seg(h)) } { (h) } } }
                        td { @for (k, v) in &s.labels { span.label { (k) "=" (v) } " " } }
                        td { @match &s.last_probe {
                            Some(p) => {
                                (badge(&p.outcome)) " " (status_word(p.status))
                                @if !p.fingerprint.is_empty() { " by " (p.fingerprint) }
                                " · " (ago(&p.at, now_ms)) " ago"
                            },
                            None => span.none { "not probed yet" },
                        } }
                    } } } }
            }
        }
    }
}
