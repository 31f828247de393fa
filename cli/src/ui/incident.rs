//! One incident's page: the request chain with the failing hop, the
//! verdict (status, who emitted it, layer and cause, owner, confidence,
//! next check, recent change), the evidence as a timeline, earlier verdicts
//! and the deliveries to receivers. Everything comes from
//! [`IncidentDetailJson`], the value `gw502ctl --json incidents show` prints.

use maud::{Markup, html};

use super::chain;
use super::page::{ago, badge, or_dash, query, seg, status_word, when};
use crate::json::{DeliveryJson, IncidentDetailJson, VerdictJson};

/// The body of `/incidents/{id}`.
pub fn body(d: &IncidentDetailJson, now_ms: i64) -> Markup {
    let i = &d.incident;
    let v = &i.verdict;
    html! {
        div.title-row {
            h1 { "Incident #" (i.id) }
            (badge(&i.state))
            span.status-big { (status_word(v.status)) }
        }
        p.meta {
            "site " a href={ "/?" (query(&[("site", &i.site)])) } { (i.site) }
            @if !i.host.is_empty() {
                " · host " a href={ "/hosts/" (seg(&i.host)) } { (i.host) }
            }
            " · opened " (when(&i.opened_at)) " (" (ago(&i.opened_at, now_ms)) " ago)"
            " · updated " (when(&i.updated_at))
            @if i.resolved_at.is_some() { " · resolved " (when(&i.resolved_at)) }
        }
        @if !v.summary.is_empty() { p.summary { (v.summary) } }
        section.card.chain-card {
            h2 { "Request chain" }
            (chain::svg(v))
            p.legend {
                span.key.key-fault {}
                "at fault: " strong.fault-word data-field="layer" { (v.layer) } " / " strong data-field="cause" { (v.cause) }
                span.sep {}
                span.key.key-emit {}
                "status " strong { (status_word(v.status)) } " emitted by " strong.emit-word data-field="emitted_by" { (v.emitted_by) }
            }
        }
        div.columns {
            section.card { h2 { "Verdict" } (verdict(v)) }
            section.card.next {
                h2 { "Next check" }
                p.next-check { (or_dash(&v.next_check)) }
                @if !v.missing.is_empty() {
                    h3 { "Missing evidence" }
                    ul { @for m in &v.missing { li { (m) } } }
                }
            }
        }
        section.card {
            h2 { "Evidence " span.count { (v.evidence.len()) } }
            (timeline(v))
        }
        @if !d.history.is_empty() {
            section.card {
                h2 { "Earlier verdicts" }
                table {
                    thead { tr { th { "at" } th { "state" } th { "status" } th { "layer" } th { "cause" } th { "confidence" } } }
                    tbody {
                        @for h in &d.history {
                            tr {
                                td { (when(&h.at)) } td { (badge(&h.state)) } td.num { (status_word(h.verdict.status)) }
                                td { (h.verdict.layer) } td { (h.verdict.cause) } td.num { (format!("{:.2}", h.verdict.confidence)) }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Deliveries " span.count { (d.deliveries.len()) } }
            (deliveries(&d.deliveries))
        }
        p.hint { "The same data: " code { "gw502ctl --json incidents show " (i.id) } }
    }
}

fn verdict(v: &VerdictJson) -> Markup {
    let percent = (v.confidence.clamp(0.0, 1.0) * 100.0).round();
    html! {
        dl.facts {
            dt { "status" } dd { (status_word(v.status)) }
            dt { "emitted by" } dd { span.emit-word { (v.emitted_by) } }
            dt { "layer at fault" } dd { span class={ "layer layer-" (v.layer) } { (v.layer) } }
            dt { "cause" } dd { code { (v.cause) } }
            dt { "owner" } dd { a href={ "/?" (query(&[("owner", &v.owner)])) } { (v.owner) } }
            dt { "confidence" } dd {
                meter min="0" max="1" low="0.5" high="0.8" optimum="1" value=(v.confidence) {}
                " " (percent) "%"
            }
            dt { "recent change" } dd {
                @match &v.recent_change {
                    Some(c) => {
                        code { (c.kind) } " of " code { (c.subject) }
                        @if !c.host.is_empty() { " on " a href={ "/hosts/" (seg(&c.host)) } { (c.host) } }
                        " at " (when(&c.at))
                    },
                    None => span.none { "none seen" },
                }
            }
        }
    }
}

fn timeline(v: &VerdictJson) -> Markup {
    html! {
        @if v.evidence.is_empty() {
            p.empty { "no evidence" }
        } @else {
            ol.timeline {
                @for e in &v.evidence {
                    li.evidence data-source=(e.source) {
                        div.when { (when(&e.observed_at)) }
                        div.what {
                            span.source { (e.source) }
                            @if !e.host.is_empty() {
                                " on " a href={ "/hosts/" (seg(&e.host)) } { (e.host) }
                            }
                            pre.detail { (e.detail) }
                        }
                    }
                }
            }
        }
    }
}

fn deliveries(list: &[DeliveryJson]) -> Markup {
    html! {
        @if list.is_empty() {
            p.empty { "no notifications sent" }
        } @else {
            table {
                thead { tr { th { "receiver" } th { "event" } th { "state" } th { "attempts" } th { "last attempt" } th { "HTTP" } th { "error" } } }
                tbody {
                    @for d in list {
                        tr {
                            td { (d.receiver) } td { (d.event) } td { (badge(&d.state)) } td.num { (d.attempts) }
                            td { (when(&d.last_attempt_at)) }
                            td.num { @if d.http_status == 0 { span.none { "–" } } @else { (d.http_status) } }
                            td { (or_dash(&d.last_error)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1 as pb;

    #[test]
    fn hostile_evidence_is_text() {
        let detail = pb::IncidentDetail {
            incident: Some(pb::Incident {
                id: 4,
                site: "shop\"><img src=x onerror=alert(1)>".into(),
                host: "web-1".into(),
                state: "open".into(),
                verdict: Some(pb::Verdict {
                    emitted_by: "proxy".into(),
                    layer: "upstream".into(),
                    cause: "service_down".into(),
                    status: 502,
                    evidence: vec![pb::Evidence {
                        source: "proxy_log".into(),
                        host: "web-1".into(),
                        observed_at_ms: 1_714_557_600_000,
                        detail: "GET /<script>alert(1)</script> HTTP/1.1".into(),
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = crate::json::incident_detail(&detail).unwrap();
        let out = body(&d, 1_714_557_660_000).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(!out.contains("<img"), "{out}");
        assert!(
            out.contains("GET /&lt;script&gt;alert(1)&lt;/script&gt; HTTP/1.1"),
            "{out}"
        );
        assert!(out.contains("site=shop%22%3E%3Cimg"), "{out}");
        assert!(out.contains("no notifications sent"));
    }
}
