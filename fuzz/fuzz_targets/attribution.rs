//! Fuzzes the attribution engine: arbitrary evidence in, never a panic.
//!
//! The input is a site line (`name url`, up to the first newline) followed by
//! records, each a tag byte, a little-endian u16 length and that many bytes of
//! a protobuf message: tag 0 a `HostReport` (its host's last report time and
//! interval come from the next record's bytes), anything else an
//! `EdgeObservation`. Records that do not decode are skipped; `now` is the
//! newest time seen, so staleness and windows are exercised too.
#![no_main]

use gw502_attribution::{HostEvidence, SiteEvidence, SiteRef, attribute};
use gw502_proto::v1::{EdgeObservation, HostReport};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let head = String::from_utf8_lossy(&data[..split]);
    let (name, url) = head.split_once(' ').unwrap_or((&head, ""));
    let mut ev = SiteEvidence {
        site: SiteRef {
            name: name.to_string(),
            url: url.to_string(),
            origin_hosts: Vec::new(),
        },
        ..SiteEvidence::default()
    };
    let mut rest = data.get(split + 1..).unwrap_or(&[]);
    while let [tag, lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (msg, next) = tail.split_at(len);
        rest = next;
        if *tag == 0 {
            if let Ok(state) = HostReport::decode(msg) {
                let seen = state.generated_at_ms;
                ev.hosts.push(HostEvidence {
                    host_id: state.host_id.clone(),
                    last_seen_ms: seen,
                    interval_ms: state.interval_ms,
                    state,
                });
            }
        } else if let Ok(o) = EdgeObservation::decode(msg) {
            if *tag == 1 && !ev.site.origin_hosts.contains(&o.vantage) {
                ev.site.origin_hosts.push(o.vantage.clone());
            }
            ev.edge.push(o);
        }
    }
    ev.edge.sort_by_key(|o| o.at_ms);
    ev.now_ms = ev
        .hosts
        .iter()
        .map(|h| h.last_seen_ms)
        .chain(ev.edge.iter().map(|o| o.at_ms))
        .max()
        .unwrap_or(0);
    for v in attribute(&ev) {
        assert_eq!(v.layer, v.cause.layer());
        assert!((0.0..=1.0).contains(&v.confidence));
    }
});
