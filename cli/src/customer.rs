//! `gw502ctl explain URL --for customer`: what a support engineer pastes
//! into a ticket. What failed, since when, whose side it is on, and what the
//! customer should do, or that the platform is on it.
//!
//! Everything here is read off the verdict: the side and the action follow
//! from its `owner` and `layer`, the sentence about what failed is its
//! `summary`, and "since" is the matching open incident's `opened_at`. No
//! second set of rules decides anything. Fleet host names (the reporting
//! hosts and the hosts evidence came from) are replaced by "the server"
//! unless the engineer asks to show them.

use std::fmt::Write as _;

use gw502_proto::v1 as pb;
use gw502_vocab::clock::rfc3339;
use gw502_vocab::{Layer, Owner};
use serde::Serialize;

use crate::render::escape;

/// The customer-ready explanation of one site (`--json` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerExplanation {
    /// The site.
    pub site: String,
    /// Whether visitors see an error now.
    pub failing: bool,
    /// The HTTP status visitors get (0: no answer at all).
    pub status: u32,
    /// That status in words (`502 Bad Gateway`).
    pub status_text: String,
    /// When the failure started (RFC 3339), when an open incident says so.
    pub since: Option<String>,
    /// `customer_app`, `platform`, `cdn`, `visitor_network` or `unknown`.
    pub side: String,
    /// The verdict's owner, for routing (`app`, `platform`, `cdn`, `customer`).
    pub owner: String,
    /// One sentence: what failed.
    pub what_failed: String,
    /// What the customer should do; empty when the platform is on it.
    pub customer_action: String,
    /// True when the fix is on the platform's side and nothing is asked of the customer.
    pub platform_on_it: bool,
}

/// Builds the explanation from the live `explain` answer and the site's open
/// incidents; `show_hosts` keeps fleet host names in the text.
pub fn explain(
    e: &pb::ExplainResponse,
    open: &[pb::Incident],
    show_hosts: bool,
) -> CustomerExplanation {
    let Some(v) = e.verdicts.first() else {
        return CustomerExplanation {
            site: e.site.clone(),
            failing: false,
            status: 0,
            status_text: String::new(),
            since: None,
            side: String::new(),
            owner: String::new(),
            what_failed: String::new(),
            customer_action: String::new(),
            platform_on_it: false,
        };
    };
    let layer = v.layer.parse::<Layer>().unwrap_or(Layer::Unknown);
    let owner = v.owner.parse::<Owner>().ok();
    let (side, action) = side_and_action(layer, owner);
    let since = open
        .iter()
        .filter(|i| {
            i.verdict
                .as_ref()
                .is_some_and(|iv| iv.layer == v.layer && iv.cause == v.cause)
        })
        .map(|i| i.opened_at_ms)
        .min()
        .and_then(rfc3339);
    let hosts = fleet_hosts(e, open);
    CustomerExplanation {
        site: e.site.clone(),
        failing: true,
        status: v.status,
        status_text: status_text(v.status),
        since,
        side: side.to_string(),
        owner: v.owner.clone(),
        what_failed: redact(&v.summary, &hosts, show_hosts),
        customer_action: action.to_string(),
        platform_on_it: action.is_empty(),
    }
}

/// Whose side a layer is on, and what the customer can do about it.
fn side_and_action(layer: Layer, owner: Option<Owner>) -> (&'static str, &'static str) {
    match (owner, layer) {
        (_, Layer::Unknown) => ("unknown", ""),
        (Some(Owner::App), _) => (
            "customer_app",
            "Please check your application: it is running, listening where the site expects it, \
             and its logs show no errors (for example a database it cannot reach). \
             The web server in front of it is working and only passed the error on.",
        ),
        (Some(Owner::Cdn), _) => (
            "cdn",
            "The CDN in front of the site made this error. Please check the CDN's settings for \
             this site (origin address, port and SSL/TLS mode) or contact the CDN's support; \
             the server itself answers.",
        ),
        (Some(Owner::Customer), _) => (
            "visitor_network",
            "Only some visitors see the error; the site answers elsewhere. The cause is likely \
             on the network path between those visitors and the site: ask them to retry from \
             another network.",
        ),
        (Some(Owner::Platform), _) | (None, _) => ("platform", ""),
    }
}

/// The text a customer reads, with fleet host names replaced unless shown.
fn redact(text: &str, hosts: &[&str], show_hosts: bool) -> String {
    let mut out = text.to_string();
    if !show_hosts {
        for h in hosts.iter().filter(|h| !h.is_empty()) {
            out = replace_word(&out, h, "the server");
        }
    }
    escape(&out).into_owned()
}

/// Replaces `word` where it stands alone, not inside a longer name
/// (`web1` in `web10`, `app-web1` or `web1.internal` stays).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let continues_name = |after: &str| {
        let mut chars = after.chars();
        match chars.next() {
            Some('.') => chars.next().is_some_and(|c| c.is_ascii_alphanumeric()),
            Some(c) => name_char(c),
            None => false,
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let after = &rest[i + word.len()..];
        let joined = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| name_char(c) || c == '.');
        out.push_str(&rest[..i]);
        out.push_str(if joined || continues_name(after) {
            word
        } else {
            with
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Every fleet host named by the answer: reporting hosts, evidence hosts and
/// incident hosts.
fn fleet_hosts<'a>(e: &'a pb::ExplainResponse, open: &'a [pb::Incident]) -> Vec<&'a str> {
    let mut hosts: Vec<&str> = e.hosts.iter().map(String::as_str).collect();
    hosts.extend(
        e.verdicts
            .iter()
            .flat_map(|v| &v.evidence)
            .map(|ev| ev.host.as_str()),
    );
    hosts.extend(open.iter().map(|i| i.host.as_str()));
    hosts.retain(|h| !h.is_empty());
    // Longest first, so `web1.internal` is replaced before `web1`.
    hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
    hosts.dedup();
    hosts
}

/// `502 Bad Gateway`; Cloudflare's own codes by their published names.
fn status_text(status: u32) -> String {
    let reason = match status {
        0 => return "no answer (the connection failed)".into(),
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        520 => "Web Server Returned an Unknown Error",
        521 => "Web Server Is Down",
        522 => "Connection Timed Out",
        523 => "Origin Is Unreachable",
        524 => "A Timeout Occurred",
        525 => "SSL Handshake Failed",
        526 => "Invalid SSL Certificate",
        530 => "Origin DNS Error",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_string()
}

/// The text form, ready to paste.
pub fn render(c: &CustomerExplanation) -> String {
    let site = escape(&c.site);
    if !c.failing {
        return format!("{site} answers normally right now; we see no errors.\n");
    }
    let mut out = String::new();
    let since = c
        .since
        .as_deref()
        .map(|s| format!(" since {s}"))
        .unwrap_or_default();
    let _ = writeln!(out, "Visitors to {site} get {}{since}.", c.status_text);
    let side = match c.side.as_str() {
        "customer_app" => "your application (the web server in front of it is working)",
        "cdn" => "the CDN in front of the site",
        "visitor_network" => "the network path of some visitors",
        "platform" => "our platform",
        _ => "not yet known",
    };
    let _ = writeln!(out, "Whose side: {side}.");
    let _ = writeln!(out, "What failed: {}.", c.what_failed.trim_end_matches('.'));
    if c.platform_on_it {
        let _ = writeln!(
            out,
            "What to do: nothing on your side; our team is working on it."
        );
    } else {
        let _ = writeln!(out, "What to do: {}", c.customer_action);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(layer: &str, cause: &str, owner: &str, summary: &str, host: &str) -> pb::Verdict {
        pb::Verdict {
            emitted_by: "proxy".into(),
            layer: layer.into(),
            cause: cause.into(),
            status: 502,
            owner: owner.into(),
            summary: summary.into(),
            evidence: vec![pb::Evidence {
                source: "systemd".into(),
                host: host.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn answer(v: pb::Verdict) -> pb::ExplainResponse {
        pb::ExplainResponse {
            site: "shop.example".into(),
            hosts: vec!["web1".into()],
            verdicts: vec![v],
            ..Default::default()
        }
    }

    #[test]
    fn an_app_fault_asks_the_customer_and_hides_fleet_hosts() {
        let v = verdict(
            "upstream",
            "service_down",
            "app",
            "app.service on web1 is stopped and nothing listens on 127.0.0.1:3000",
            "web1",
        );
        let open = [pb::Incident {
            host: "web1".into(),
            opened_at_ms: 1_764_600_000_000,
            verdict: Some(v.clone()),
            ..Default::default()
        }];
        let c = explain(&answer(v), &open, false);
        assert_eq!(c.side, "customer_app");
        assert!(!c.platform_on_it);
        assert_eq!(c.since.as_deref(), Some("2025-12-01T14:40:00Z"));
        assert_eq!(
            c.what_failed,
            "app.service on the server is stopped and nothing listens on 127.0.0.1:3000"
        );
        let text = render(&c);
        assert!(
            text.starts_with(
                "Visitors to shop.example get 502 Bad Gateway since 2025-12-01T14:40:00Z.\n"
            ),
            "{text}"
        );
        assert!(!text.contains("web1"), "{text}");
        assert!(text.contains("Please check your application"), "{text}");
    }

    #[test]
    fn platform_faults_ask_nothing_and_hosts_show_on_request() {
        let v = verdict(
            "handoff",
            "wrong_port",
            "platform",
            "nginx on web1 targets 127.0.0.1:3000 while app.service listens on 3001",
            "web1",
        );
        let c = explain(&answer(v), &[], true);
        assert_eq!((c.side.as_str(), c.platform_on_it), ("platform", true));
        assert!(c.what_failed.contains("web1"), "shown on request");
        assert_eq!(c.since, None, "no open incident, no claim about since when");
        assert!(render(&c).contains("nothing on your side"));
    }

    #[test]
    fn cdn_visitor_unknown_and_healthy_sites() {
        let cdn = explain(
            &answer(verdict("edge", "edge_tls_to_origin", "cdn", "x", "")),
            &[],
            false,
        );
        assert_eq!((cdn.side.as_str(), cdn.platform_on_it), ("cdn", false));
        let path = explain(
            &answer(verdict("client", "client_path", "customer", "x", "")),
            &[],
            false,
        );
        assert_eq!(path.side, "visitor_network");
        let unknown = explain(
            &answer(verdict(
                "unknown",
                "insufficient_evidence",
                "platform",
                "x",
                "",
            )),
            &[],
            false,
        );
        assert_eq!(
            (unknown.side.as_str(), unknown.platform_on_it),
            ("unknown", true)
        );
        let healthy = explain(
            &pb::ExplainResponse {
                site: "a.example".into(),
                ..Default::default()
            },
            &[],
            false,
        );
        assert!(!healthy.failing);
        assert_eq!(
            render(&healthy),
            "a.example answers normally right now; we see no errors.\n"
        );
    }

    #[test]
    fn host_names_are_replaced_only_where_they_stand_alone() {
        let hosts = ["web1"];
        assert_eq!(
            redact("web1 and web10 and app-web1 and web1.", &hosts, false),
            "the server and web10 and app-web1 and the server."
        );
        assert_eq!(
            redact("web1.internal:8080", &["web1.internal", "web1"], false),
            "the server:8080"
        );
        assert_eq!(redact("a\u{1b}[31m", &hosts, false), "a\\u{1b}[31m");
    }

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(status_text(504), "504 Gateway Timeout");
        assert_eq!(status_text(521), "521 Web Server Is Down");
        assert_eq!(status_text(599), "599");
        assert_eq!(status_text(0), "no answer (the connection failed)");
    }
}
