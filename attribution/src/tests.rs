//! The attribution table: one row per scenario (evidence in, layer/cause/
//! status/emitted_by out), grouped by layer in the submodules, plus the small
//! builders that keep rows short. Log samples are the exact nginx, HAProxy,
//! Apache and Caddy messages TAXONOMY.md §3 lists, labelled the way the
//! agent's parser labels them (a cause or a `|`-joined candidate set). Hosts
//! come from `gw502-testkit` at its fixed clock, the same builder the
//! integration tests use.

mod cdn;
mod chain;
mod cold_start;
mod containers;
mod edge_client;
mod fronts;
mod handoff;
mod health;
mod lab;
mod proxy;
mod response_dependency;
mod site_builder;
mod traefik_envoy;
mod upstream;
mod varnish;

use gw502_proto::v1::*;

use super::{Cause, Hop, attribute};

use site_builder::*;

fn all_rows() -> Vec<Row> {
    let mut rows = lab::rows();
    for more in [
        cdn::rows(),
        chain::rows(),
        cold_start::rows(),
        containers::rows(),
        edge_client::rows(),
        proxy::rows(),
        handoff::rows(),
        upstream::rows(),
        response_dependency::rows(),
        fronts::rows(),
        traefik_envoy::rows(),
        health::rows(),
        varnish::rows(),
    ] {
        rows.extend(more);
    }
    rows
}

#[test]
fn attribution_table() {
    let mut failures = Vec::new();
    let rows = all_rows();
    for r in &rows {
        let got = attribute(&r.ev);
        let first = got
            .first()
            .map(|v| (v.layer, v.cause, v.status, v.emitted_by));
        if first != r.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?}\n  {:#?}",
                r.name,
                r.expect,
                first,
                got.first()
            ));
        }
        for v in &got {
            let ok = v.layer == v.cause.layer()
                && (0.0..=1.0).contains(&v.confidence)
                && !v.next_check.is_empty()
                && !v.summary.is_empty();
            if !ok {
                failures.push(format!("{}: malformed verdict {v:#?}", r.name));
            }
            if v.cause == Cause::InsufficientEvidence && v.missing.is_empty() {
                failures.push(format!("{}: insufficient_evidence without missing", r.name));
            }
        }
        if let (Some(of), Some(v)) = (r.near, got.first())
            && v.cause == of
        {
            failures.push(format!("{}: near-miss row attributed to {of}", r.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn every_cause_has_a_positive_and_a_near_miss_row() {
    let rows = all_rows();
    for cause in Cause::ALL {
        assert!(
            rows.iter().any(|r| r.expect.is_some_and(|e| e.1 == *cause)),
            "no positive row for {cause}"
        );
        assert!(
            rows.iter().any(|r| r.near == Some(*cause)),
            "no near-miss row for {cause}"
        );
    }
}

fn find(name: &str) -> super::Verdict {
    let r = all_rows()
        .into_iter()
        .find(|r| r.name == name)
        .expect("row exists");
    attribute(&r.ev).into_iter().next().expect("a verdict")
}

#[test]
fn verdicts_carry_change_evidence_and_missing() {
    let v = find("lab 01 app stopped");
    let change = v.recent_change.clone().expect("recent change");
    assert_eq!(
        (
            change.kind.as_str(),
            change.subject.as_str(),
            change.host.as_str()
        ),
        ("unit_stop", "app.service", "web1")
    );
    let sources: Vec<&str> = v.evidence.iter().map(|e| e.source.as_str()).collect();
    for s in ["proxy_log", "sockets", "systemd", "direct_probe"] {
        assert!(sources.contains(&s), "{s} missing from {sources:?}");
    }
    assert!(
        v.next_check.contains("app.service") && v.next_check.contains("127.0.0.1:3000"),
        "{}",
        v.next_check
    );
    assert!(v.confidence >= 0.9);

    let stale = find("stale agent still attributes, lower confidence");
    assert!(stale.confidence < v.confidence && stale.missing.iter().any(|m| m.contains("stale")));

    let blind = find("unknown: refusals but systemd and sockets unavailable");
    assert!(
        blind
            .missing
            .iter()
            .any(|m| m.starts_with("sockets unavailable on web1: netlink")),
        "{:?}",
        blind.missing
    );
    let unique: std::collections::BTreeSet<_> = blind.missing.iter().collect();
    assert_eq!(unique.len(), blind.missing.len(), "missing has duplicates");

    let edge = find("lab 10 nginx stopped behind haproxy edge");
    assert_eq!(
        edge.recent_change.map(|c| c.subject),
        Some("nginx.service".to_string())
    );
    assert_eq!(edge.owner, super::Owner::Platform);
}

#[test]
fn proto_verdict_uses_taxonomy_words() {
    let v = find("lab 12 php-fpm max_children");
    let p = gw502_proto::v1::Verdict::from(&v);
    assert_eq!(
        (
            p.layer.as_str(),
            p.cause.as_str(),
            p.status,
            p.emitted_by.as_str(),
            p.owner.as_str()
        ),
        ("upstream", "saturated", 504, "proxy", "app")
    );
    assert!(
        p.evidence
            .iter()
            .any(|e| e.source == "journal" && e.detail.contains("pm.max_children"))
    );
}

#[test]
fn hostile_log_lines_are_escaped_in_evidence() {
    let line = "upstream sent invalid header: \"X-A\u{0}\n[emerg] fake\" while reading response header from upstream";
    let ev = site("shop.example")
        .public("ok", 502, "nginx")
        .host(web("web1").ngx("invalid_header", "error", line, "http://127.0.0.1:3000/"))
        .0;
    let v = attribute(&ev).remove(0);
    assert_eq!(v.cause, Cause::InvalidHeader);
    assert!(
        v.evidence
            .iter()
            .all(|e| !e.detail.chars().any(char::is_control))
    );
}

#[test]
fn multi_host_names_only_the_bad_host() {
    let r = all_rows()
        .into_iter()
        .find(|r| r.name == "two origins, only web2 fails")
        .expect("row");
    let got = attribute(&r.ev);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].host.as_deref(), Some("web2"));
}

#[test]
fn unknown_words_from_a_newer_agent_are_listed_in_missing() {
    let line = "connect() failed (111: Connection refused) while connecting to upstream";
    let ev = site("shop.example")
        .public("ok", 502, "nginx")
        .host(
            web("web1")
                .ngx(
                    "service_down|quic_reset",
                    "error",
                    line,
                    "http://127.0.0.1:3000/",
                )
                .probe("127.0.0.1:3000", "ok", "warp", 200, ""),
        )
        .0;
    let v = attribute(&ev).remove(0);
    for word in ["\"quic_reset\"", "\"warp\""] {
        assert!(
            v.missing.iter().any(|m| m.contains(word)),
            "{word} not surfaced: {:?}",
            v.missing
        );
    }
    let mut newer = ev.clone();
    newer.edge[0].outcome = "quic_error".into();
    let v = attribute(&newer).remove(0);
    assert!(
        v.missing.iter().any(|m| m.contains("\"quic_error\"")),
        "{:?}",
        v.missing
    );
}
