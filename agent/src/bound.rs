//! Keeps every report under a byte bound, so a host with a flood of log
//! lines or thousands of listeners still reports instead of being refused.
//!
//! Each source already caps what it gathers; this is the last line. While the
//! encoded report is too large, the largest list in it is halved (the newest
//! entries are kept, since they matter most for a live fault), and the section
//! says what was cut. A section that is still too large with an empty list is
//! replaced by an unavailable one.

use gw502_proto::v1::HostReport;
use prost::Message;

/// Reports stay well under the collector's message limit.
pub const MAX_REPORT_BYTES: usize = gw502_proto::MAX_REPORT_BYTES;

/// Shrinks `report` until it encodes to at most `max` bytes. Returns how many
/// list items were cut.
pub fn bound(report: &mut HostReport, max: usize) -> usize {
    let mut cut = 0;
    let mut len = report.encoded_len();
    while len > max {
        let Some(largest) = largest_section(report) else {
            break;
        };
        let removed = halve(report, largest);
        if removed == 0 {
            clear(report, largest);
        }
        cut += removed;
        let shrunk = report.encoded_len();
        if shrunk >= len {
            // Only headers are left: nothing more can go.
            break;
        }
        len = shrunk;
    }
    cut
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Systemd,
    Sockets,
    Journal,
    ProxyConfig,
    Probes,
    Dns,
    ProxyLog,
    AccessLog,
    CrossProbes,
}

const PARTS: [Part; 9] = [
    Part::Systemd,
    Part::Sockets,
    Part::Journal,
    Part::ProxyConfig,
    Part::Probes,
    Part::Dns,
    Part::ProxyLog,
    Part::AccessLog,
    Part::CrossProbes,
];

fn size(report: &HostReport, part: Part) -> usize {
    match part {
        Part::Systemd => report.systemd.as_ref().map_or(0, Message::encoded_len),
        Part::Sockets => report.sockets.as_ref().map_or(0, Message::encoded_len),
        Part::Journal => report.journal.as_ref().map_or(0, Message::encoded_len),
        Part::ProxyConfig => report.proxy_config.as_ref().map_or(0, Message::encoded_len),
        Part::Probes => report.probes.as_ref().map_or(0, Message::encoded_len),
        Part::Dns => report.dns.as_ref().map_or(0, Message::encoded_len),
        Part::ProxyLog => report.proxy_log.as_ref().map_or(0, Message::encoded_len),
        Part::AccessLog => report.access_log.as_ref().map_or(0, Message::encoded_len),
        Part::CrossProbes => report.cross_probes.as_ref().map_or(0, Message::encoded_len),
    }
}

fn largest_section(report: &HostReport) -> Option<Part> {
    PARTS
        .into_iter()
        .filter(|&p| size(report, p) > 0)
        .max_by_key(|&p| size(report, p))
}

/// Keeps the newest half of a list; returns how many items went.
fn keep_newest_half<T>(items: &mut Vec<T>) -> usize {
    let removed = items.len() - items.len() / 2;
    items.drain(..removed);
    removed
}

fn halve(report: &mut HostReport, part: Part) -> usize {
    match part {
        Part::Systemd => report
            .systemd
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.units)),
        Part::Sockets => report
            .sockets
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.listeners)),
        Part::Journal => report.journal.as_mut().map_or(0, |s| {
            let removed = keep_newest_half(&mut s.entries) + keep_newest_half(&mut s.events);
            s.dropped += removed as u32;
            removed
        }),
        Part::ProxyConfig => report.proxy_config.as_mut().map_or(0, |s| {
            s.proxies
                .iter_mut()
                .map(|p| keep_newest_half(&mut p.targets))
                .sum()
        }),
        Part::Probes => report
            .probes
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.probes)),
        Part::Dns => report
            .dns
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.answers)),
        Part::ProxyLog => report.proxy_log.as_mut().map_or(0, |s| {
            let samples: usize = s
                .signals
                .iter_mut()
                .map(|g| keep_newest_half(&mut g.samples))
                .sum();
            if samples > 0 {
                samples
            } else {
                keep_newest_half(&mut s.signals)
            }
        }),
        Part::AccessLog => report
            .access_log
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.counts)),
        Part::CrossProbes => report
            .cross_probes
            .as_mut()
            .map_or(0, |s| keep_newest_half(&mut s.observations)),
    }
}

fn clear(report: &mut HostReport, part: Part) {
    let reason = format!("section exceeded the report bound of {MAX_REPORT_BYTES} bytes");
    macro_rules! unavailable {
        ($field:ident) => {
            report.$field = Some(crate::report::Section::unavailable(reason))
        };
    }
    match part {
        Part::Systemd => unavailable!(systemd),
        Part::Sockets => unavailable!(sockets),
        Part::Journal => unavailable!(journal),
        Part::ProxyConfig => unavailable!(proxy_config),
        Part::Probes => unavailable!(probes),
        Part::Dns => unavailable!(dns),
        Part::ProxyLog => unavailable!(proxy_log),
        Part::AccessLog => unavailable!(access_log),
        Part::CrossProbes => unavailable!(cross_probes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1::{JournalEntry, JournalSection, Listener, SocketsSection};

    fn flooded() -> HostReport {
        HostReport {
            journal: Some(JournalSection {
                entries: (0..5_000)
                    .map(|i| JournalEntry {
                        message: format!("{i:05} {}", "x".repeat(200)),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            sockets: Some(SocketsSection {
                listeners: (0..100)
                    .map(|port| Listener {
                        port,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_largest_list_is_cut_keeping_the_newest() {
        let mut report = flooded();
        let cut = bound(&mut report, 100_000);
        assert!(report.encoded_len() <= 100_000);
        let journal = report.journal.unwrap();
        assert_eq!(journal.dropped as usize, cut);
        assert!(
            journal.entries.last().unwrap().message.starts_with("04999"),
            "newest kept"
        );
        assert_eq!(
            report.sockets.unwrap().listeners.len(),
            100,
            "small sections untouched"
        );
    }

    #[test]
    fn a_report_within_the_bound_is_untouched() {
        let mut report = flooded();
        let before = report.clone();
        assert_eq!(bound(&mut report, usize::MAX), 0);
        assert_eq!(report, before);
    }

    #[test]
    fn an_impossible_bound_terminates() {
        let mut report = flooded();
        report.host_id = "h".repeat(500);
        bound(&mut report, 10);
        assert!(
            report.encoded_len() > 10,
            "the header alone exceeds it, and that is fine"
        );
    }

    #[test]
    fn an_irreducible_section_becomes_unavailable() {
        let mut report = HostReport {
            sockets: Some(SocketsSection {
                unavailable: "y".repeat(10_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        bound(&mut report, 1_000);
        assert!(report.encoded_len() <= 1_000);
        assert!(report.sockets.unwrap().unavailable.contains("report bound"));
    }
}
