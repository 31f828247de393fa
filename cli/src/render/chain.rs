//! The request chain of a verdict drawn in one line:
//! `visitor ─▶ edge ─▶ proxy [502 emitted here] ─▶ upstream ✗ (service_down)`.
//!
//! The hop at fault (the verdict's `layer`) carries `✗ (cause)`; a handoff
//! failure is drawn on the link between proxy and upstream; the hop named by
//! `emitted_by` carries `[<status> emitted here]`. A cache that emitted the
//! status (Varnish's own 503) is drawn as a `cache` hop before the proxy.

use super::escape;

const ARROW: &str = " ─▶ ";

/// Hops of the chain, in request order.
const HOPS: [&str; 5] = ["visitor", "edge", "proxy", "upstream", "dependency"];

/// Where the fault is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// On a hop (index into [`HOPS`]).
    Hop(usize),
    /// On the link from proxy to upstream.
    Handoff,
    /// Not known.
    Unknown,
}

fn fault_of(layer: &str) -> Fault {
    match layer {
        "client" => Fault::Hop(0),
        "edge" => Fault::Hop(1),
        "proxy" => Fault::Hop(2),
        "handoff" => Fault::Handoff,
        "upstream" | "response" => Fault::Hop(3),
        "dependency" => Fault::Hop(4),
        _ => Fault::Unknown,
    }
}

fn emitter_of(emitted_by: &str) -> Option<usize> {
    match emitted_by {
        "edge" => Some(1),
        "proxy" => Some(2),
        "upstream" => Some(3),
        _ => None,
    }
}

/// Draws the chain for a verdict.
pub fn draw(emitted_by: &str, layer: &str, cause: &str, status: u32) -> String {
    let fault = fault_of(layer);
    let cause = escape(cause);
    let last = if fault == Fault::Hop(4) { 4 } else { 3 };
    let emitter = emitter_of(emitted_by);
    let mut out = String::new();
    for (i, hop) in HOPS.iter().enumerate().take(last + 1) {
        if i > 0 {
            if i == 3 && fault == Fault::Handoff {
                out.push_str(&format!(" ─✗ ({cause}) ─▶ "));
            } else {
                out.push_str(ARROW);
            }
        }
        if i == 2 && emitted_by == "cache" {
            out.push_str("cache");
            out.push_str(&emitted(status));
            out.push_str(ARROW);
        }
        out.push_str(hop);
        if emitter == Some(i) {
            out.push_str(&emitted(status));
        }
        if fault == Fault::Hop(i) {
            if layer == "response" {
                out.push_str(&format!(" ✗ (bad response: {cause})"));
            } else {
                out.push_str(&format!(" ✗ ({cause})"));
            }
        }
    }
    if fault == Fault::Unknown {
        out.push_str(&format!("   failing hop unknown ({cause})"));
    }
    out
}

/// ` [502 emitted here]`, or ` [error emitted here]` when no status came.
fn emitted(status: u32) -> String {
    if status == 0 {
        " [error emitted here]".to_string()
    } else {
        format!(" [{status} emitted here]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_that_emitted_is_drawn_before_the_proxy() {
        assert_eq!(
            draw("cache", "proxy", "proxy_down", 503),
            "visitor ─▶ edge ─▶ cache [503 emitted here] ─▶ proxy ✗ (proxy_down) ─▶ upstream"
        );
    }

    #[test]
    fn upstream_fault_matches_the_documented_example() {
        assert_eq!(
            draw("proxy", "upstream", "service_down", 502),
            "visitor ─▶ edge ─▶ proxy [502 emitted here] ─▶ upstream ✗ (service_down)"
        );
    }

    #[test]
    fn every_failing_hop() {
        let rows = [
            (
                "edge",
                "client",
                "client_path",
                502,
                "visitor ✗ (client_path) ─▶ edge [502 emitted here] ─▶ proxy ─▶ upstream",
            ),
            (
                "edge",
                "edge",
                "edge_tls_to_origin",
                525,
                "visitor ─▶ edge [525 emitted here] ✗ (edge_tls_to_origin) ─▶ proxy ─▶ upstream",
            ),
            (
                "edge",
                "proxy",
                "proxy_down",
                521,
                "visitor ─▶ edge [521 emitted here] ─▶ proxy ✗ (proxy_down) ─▶ upstream",
            ),
            (
                "proxy",
                "handoff",
                "wrong_port",
                502,
                "visitor ─▶ edge ─▶ proxy [502 emitted here] ─✗ (wrong_port) ─▶ upstream",
            ),
            (
                "proxy",
                "response",
                "header_too_big",
                502,
                "visitor ─▶ edge ─▶ proxy [502 emitted here] ─▶ upstream ✗ (bad response: header_too_big)",
            ),
            (
                "upstream",
                "dependency",
                "dependency_failure",
                503,
                "visitor ─▶ edge ─▶ proxy ─▶ upstream [503 emitted here] ─▶ dependency ✗ (dependency_failure)",
            ),
            (
                "unknown",
                "unknown",
                "insufficient_evidence",
                0,
                "visitor ─▶ edge ─▶ proxy ─▶ upstream   failing hop unknown (insufficient_evidence)",
            ),
        ];
        for (emitted, layer, cause, status, want) in rows {
            assert_eq!(draw(emitted, layer, cause, status), want, "{layer}");
        }
    }

    #[test]
    fn hostile_cause_is_escaped() {
        let out = draw("proxy", "upstream", "x\x1b[2Jy", 502);
        assert!(out.ends_with("upstream ✗ (x\\u{1b}[2Jy)"), "{out}");
    }
}
