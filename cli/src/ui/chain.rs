//! The request chain of a verdict as inline SVG:
//! visitor → edge → proxy → upstream → dependency.
//!
//! The hop at fault (the verdict's `layer`) is drawn red with `✗ at fault`
//! and carries `data-failing="true"` and `data-layer`; a handoff failure
//! marks the link from proxy to upstream instead of a hop, and a response
//! failure marks the upstream (its bytes were bad). The hop that produced the
//! status (`emitted_by`) carries a separate amber badge and
//! `data-emitted="true"`, so the messenger is never mistaken for the culprit.
//! A cache that emitted the status (Varnish's own 503) is drawn as a `cache`
//! hop before the proxy. The same placement rules as the text chain ([`crate::render::chain`]),
//! whose line is the SVG's accessible title.

use gw502_vocab::{Hop, Layer};
use maud::{Markup, html};

use crate::json::VerdictJson;
use crate::render::chain::draw;

/// Hops in request order, with the words under their names.
const HOPS: [HopBox; 5] = [
    ("visitor", "browser, client"),
    ("edge", "CDN, load balancer"),
    ("proxy", "nginx, HAProxy, …"),
    ("upstream", "app, PHP-FPM pool"),
    ("dependency", "DB, cache, API"),
];

const STEP: i32 = 190;
const LEFT: i32 = 20;
const BOX_W: i32 = 136;
const BOX_H: i32 = 64;
const BOX_Y: i32 = 58;

/// The cache hop, drawn only when the cache emitted the status.
const CACHE: HopBox = ("cache", "Varnish, HTTP cache");

/// A hop's name and the words under it.
type HopBox = (&'static str, &'static str);

/// Where the fault of `layer` is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// On the hop of this name.
    Hop(&'static str),
    /// On the link between proxy and upstream.
    Handoff,
    /// Not known.
    Unknown,
}

/// Where a layer's fault goes on the chain.
pub fn fault_of(layer: &str) -> Fault {
    match layer.parse::<Layer>() {
        Ok(Layer::Client) => Fault::Hop("visitor"),
        Ok(Layer::Edge) => Fault::Hop("edge"),
        Ok(Layer::Proxy) => Fault::Hop("proxy"),
        Ok(Layer::Handoff) => Fault::Handoff,
        Ok(Layer::Upstream | Layer::Response) => Fault::Hop("upstream"),
        Ok(Layer::Dependency) => Fault::Hop("dependency"),
        Ok(Layer::Unknown) | Err(_) => Fault::Unknown,
    }
}

/// The name of the hop `emitted_by` names, if it is one.
pub fn emitter_of(emitted_by: &str) -> Option<&'static str> {
    match emitted_by.parse::<Hop>() {
        Ok(Hop::Edge) => Some("edge"),
        Ok(Hop::Cache) => Some("cache"),
        Ok(Hop::Proxy) => Some("proxy"),
        Ok(Hop::Upstream) => Some("upstream"),
        Ok(Hop::Unknown) | Err(_) => None,
    }
}

/// The hops drawn for a verdict: the cache only when it emitted the status.
fn hops(emitter: Option<&str>) -> Vec<HopBox> {
    let mut hops = HOPS.to_vec();
    if emitter == Some(CACHE.0) {
        hops.insert(2, CACHE);
    }
    hops
}

fn left_of(i: usize) -> i32 {
    LEFT + STEP * i32::try_from(i).unwrap_or(0)
}

/// The chain of `v` as an `<svg>` element.
pub fn svg(v: &VerdictJson) -> Markup {
    let fault = fault_of(&v.layer);
    let emitter = emitter_of(&v.emitted_by);
    let hops = hops(emitter);
    let line = draw(&v.emitted_by, &v.layer, &v.cause, v.status);
    let status = if v.status == 0 {
        "error".to_string()
    } else {
        v.status.to_string()
    };
    let width = left_of(hops.len() - 1) + BOX_W + LEFT;
    let mid_y = BOX_Y + BOX_H / 2;
    html! {
        svg.chain xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chain-title"
            viewBox={ "0 0 " (width) " 196" } data-layer=(v.layer) data-emitted-by=(v.emitted_by) {
            title id="chain-title" { (line) }
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path.arrowhead d="M0,0 L10,5 L0,10 z" {}
                }
                marker id="arrow-bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse" {
                    path.arrowhead-bad d="M0,0 L10,5 L0,10 z" {}
                }
            }
            @for i in 1..hops.len() {
                @let x1 = left_of(i - 1) + BOX_W;
                @let x2 = left_of(i) - 4;
                @let into_upstream = hops[i].0 == "upstream";
                @let bad = into_upstream && fault == Fault::Handoff;
                @let hop = if into_upstream { "handoff" } else { "link" };
                g class=(if bad { "link failing" } else { "link" }) data-hop=(hop)
                    data-failing=(bad) data-layer=[bad.then_some(v.layer.as_str())] {
                    line x1=(x1) y1=(mid_y) x2=(x2) y2=(mid_y)
                        marker-end=(if bad { "url(#arrow-bad)" } else { "url(#arrow)" }) {}
                    @if bad {
                        text.cross x=((x1 + x2) / 2) y=(mid_y - 10) text-anchor="middle" { "✗" }
                        text.fault x=((x1 + x2) / 2) y=(BOX_Y + BOX_H + 26) text-anchor="middle" { "✗ handoff at fault" }
                        text.cause x=((x1 + x2) / 2) y=(BOX_Y + BOX_H + 44) text-anchor="middle" { (v.cause) }
                    }
                }
            }
            @for (i, (name, sub)) in hops.iter().enumerate() {
                @let x = left_of(i);
                @let failing = fault == Fault::Hop(name);
                @let emitted = emitter == Some(*name);
                @let class = match (failing, emitted) {
                    (true, true) => "hop failing emitted",
                    (true, false) => "hop failing",
                    (false, true) => "hop emitted",
                    (false, false) => "hop",
                };
                g class=(class) data-hop=(name) data-failing=(failing)
                    data-layer=[failing.then_some(v.layer.as_str())] data-emitted=[emitted.then_some("true")] {
                    @if emitted {
                        g.emit-badge {
                            rect x=(x + 2) y="10" width=(BOX_W - 4) height="26" rx="13" {}
                            text x=(x + BOX_W / 2) y="28" text-anchor="middle" { (status) " emitted here" }
                            line x1=(x + BOX_W / 2) y1="36" x2=(x + BOX_W / 2) y2=(BOX_Y) {}
                        }
                    }
                    rect.box x=(x) y=(BOX_Y) width=(BOX_W) height=(BOX_H) rx="10" {}
                    text.name x=(x + BOX_W / 2) y=(BOX_Y + 28) text-anchor="middle" { (name) }
                    text.sub x=(x + BOX_W / 2) y=(BOX_Y + 48) text-anchor="middle" { (sub) }
                    @if failing {
                        text.fault x=(x + BOX_W / 2) y=(BOX_Y + BOX_H + 26) text-anchor="middle" {
                            @if v.layer == "response" { "✗ bad response" } @else { "✗ at fault" }
                        }
                        text.cause x=(x + BOX_W / 2) y=(BOX_Y + BOX_H + 44) text-anchor="middle" { (v.cause) }
                    }
                }
            }
            @if fault == Fault::Unknown {
                text.unknown x=(width / 2) y=(BOX_Y + BOX_H + 34) text-anchor="middle" {
                    "failing hop unknown (" (v.cause) ")"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1 as pb;

    fn verdict(emitted_by: &str, layer: &str, cause: &str, status: u32) -> VerdictJson {
        crate::json::verdict(&pb::Verdict {
            emitted_by: emitted_by.into(),
            layer: layer.into(),
            cause: cause.into(),
            status,
            ..Default::default()
        })
    }

    /// The `data-hop` of every element marked failing.
    fn failing(svg: &str) -> Vec<String> {
        svg.split("<g ")
            .filter(|g| {
                g.split('>')
                    .next()
                    .is_some_and(|t| t.contains(r#"data-failing="true""#))
            })
            .filter_map(|g| g.split("data-hop=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_failing_hop_for_every_layer() {
        for (emitted, layer, hop) in [
            ("edge", "client", "visitor"),
            ("edge", "edge", "edge"),
            ("edge", "proxy", "proxy"),
            ("proxy", "handoff", "handoff"),
            ("proxy", "upstream", "upstream"),
            ("proxy", "response", "upstream"),
            ("upstream", "dependency", "dependency"),
        ] {
            let out = svg(&verdict(emitted, layer, "x", 502)).into_string();
            assert_eq!(failing(&out), [hop], "{layer}: {out}");
            assert!(out.contains(&format!(r#"data-layer="{layer}""#)), "{out}");
        }
        let unknown = svg(&verdict("unknown", "unknown", "insufficient_evidence", 0)).into_string();
        assert!(failing(&unknown).is_empty(), "{unknown}");
        assert!(unknown.contains("failing hop unknown"), "{unknown}");
    }

    #[test]
    fn emitted_by_is_apart_from_the_fault() {
        let out = svg(&verdict("proxy", "upstream", "service_down", 502)).into_string();
        let emitted: Vec<&str> = out
            .split("<g ")
            .filter(|g| {
                g.split('>')
                    .next()
                    .is_some_and(|t| t.contains(r#"data-emitted="true""#))
            })
            .collect();
        assert_eq!(emitted.len(), 1, "{out}");
        assert!(
            emitted[0].starts_with(r#"class="hop emitted" data-hop="proxy""#),
            "{out}"
        );
        assert!(out.contains("502 emitted here"), "{out}");
        assert!(
            out.contains(
                "visitor ─▶ edge ─▶ proxy [502 emitted here] ─▶ upstream ✗ (service_down)"
            )
        );
    }

    #[test]
    fn a_cache_that_emitted_is_a_hop_before_the_proxy() {
        let out = svg(&verdict("cache", "proxy", "proxy_down", 503)).into_string();
        assert_eq!(failing(&out), ["proxy"], "{out}");
        let hops: Vec<&str> = out
            .split("data-hop=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|h| !matches!(*h, "link" | "handoff"))
            .collect();
        assert_eq!(
            hops,
            [
                "visitor",
                "edge",
                "cache",
                "proxy",
                "upstream",
                "dependency"
            ]
        );
        assert!(
            out.contains(r#"class="hop emitted" data-hop="cache""#),
            "{out}"
        );
        let plain = svg(&verdict("proxy", "handoff", "wrong_port", 502)).into_string();
        assert!(!plain.contains(r#"data-hop="cache""#), "{plain}");
        assert_eq!(failing(&plain), ["handoff"], "{plain}");
    }

    #[test]
    fn svg_elements_are_closed_and_text_escaped() {
        let out = svg(&verdict(
            "proxy",
            "handoff",
            "<script>alert(1)</script>",
            502,
        ))
        .into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert_eq!(out.matches("<rect").count(), out.matches("</rect>").count());
        assert_eq!(out.matches("<line").count(), out.matches("</line>").count());
    }
}
