//! Folds a host's stored reports into its current picture.
//!
//! Agents send a full snapshot now and then and only the changed sections in
//! between; an absent section means "unchanged". Snapshot sections (systemd,
//! sockets, proxy config, probes, DNS) are therefore taken from the newest
//! report that carries them. Incremental sections (journal, proxy log, access
//! log, cross probes) describe what happened since the previous report, so
//! they are concatenated over the evidence window instead.
//!
//! Reports replayed from an agent's spool are history: they may complete the
//! snapshot, but their incremental signals never count as fresh evidence, and
//! neither do their direct probes (a probe is a measurement of the moment it
//! ran, and a failed one alone marks the site as failing).

use gw502_proto::v1::{
    AccessLogSection, CrossProbeSection, HostReport, JournalSection, ProxyLogSection,
};

/// Merges `reports` (oldest first) into one report describing the host now.
///
/// Incremental sections only take reports generated at or after
/// `window_start_ms` and not replayed.
pub fn fold(reports: &[HostReport], window_start_ms: i64) -> HostReport {
    let mut state = HostReport::default();
    let mut journal = JournalSection::default();
    let mut proxy_log = ProxyLogSection::default();
    let mut access_log = AccessLogSection::default();
    let mut cross = CrossProbeSection::default();
    for report in reports {
        state.host_id.clone_from(&report.host_id);
        state.agent_version.clone_from(&report.agent_version);
        state.agent_instance.clone_from(&report.agent_instance);
        state.seq = report.seq;
        state.generated_at_ms = report.generated_at_ms;
        state.spool_dropped = report.spool_dropped;
        state.interval_ms = report.interval_ms;
        if report.full_snapshot || !report.addresses.is_empty() {
            state.addresses.clone_from(&report.addresses);
        }
        take_newer(&mut state.systemd, &report.systemd);
        take_newer(&mut state.sockets, &report.sockets);
        take_newer(&mut state.proxy_config, &report.proxy_config);
        if !report.replayed {
            take_newer(&mut state.probes, &report.probes);
        }
        take_newer(&mut state.dns, &report.dns);
        take_newer(&mut state.containers, &report.containers);
        if report.replayed || report.generated_at_ms < window_start_ms {
            continue;
        }
        if let Some(section) = &report.journal {
            journal.unavailable.clone_from(&section.unavailable);
            journal.entries.extend(section.entries.iter().cloned());
            journal.events.extend(section.events.iter().cloned());
            journal.dropped += section.dropped;
        }
        if let Some(section) = &report.proxy_log {
            proxy_log.unavailable.clone_from(&section.unavailable);
            proxy_log.signals.extend(section.signals.iter().cloned());
            merge_names(&mut proxy_log.files, &section.files);
            proxy_log.lines_read += section.lines_read;
            proxy_log.lines_unparsed += section.lines_unparsed;
        }
        if let Some(section) = &report.access_log {
            access_log.unavailable.clone_from(&section.unavailable);
            access_log.counts.extend(section.counts.iter().cloned());
            merge_names(&mut access_log.files, &section.files);
        }
        if let Some(section) = &report.cross_probes {
            cross.unavailable.clone_from(&section.unavailable);
            cross
                .observations
                .extend(section.observations.iter().cloned());
        }
    }
    let seen = |present: bool| present.then_some(());
    let any = |f: fn(&HostReport) -> bool| seen(reports.iter().any(f));
    state.journal = any(|r| r.journal.is_some()).map(|()| journal);
    state.proxy_log = any(|r| r.proxy_log.is_some()).map(|()| proxy_log);
    state.access_log = any(|r| r.access_log.is_some()).map(|()| access_log);
    state.cross_probes = any(|r| r.cross_probes.is_some()).map(|()| cross);
    state
}

fn take_newer<T: Clone>(slot: &mut Option<T>, section: &Option<T>) {
    if let Some(section) = section {
        *slot = Some(section.clone());
    }
}

fn merge_names(into: &mut Vec<String>, names: &[String]) {
    for name in names {
        if !into.contains(name) {
            into.push(name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1::{JournalEntry, SystemdSection, UnitState};

    fn unit(active: &str) -> Option<SystemdSection> {
        Some(SystemdSection {
            units: vec![UnitState {
                name: "app.service".into(),
                active_state: active.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn journal(message: &str) -> Option<JournalSection> {
        Some(JournalSection {
            entries: vec![JournalEntry {
                message: message.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn absent_sections_keep_the_last_value_and_logs_accumulate() {
        let reports = vec![
            HostReport {
                seq: 1,
                generated_at_ms: 1_000,
                full_snapshot: true,
                systemd: unit("active"),
                journal: journal("a"),
                ..Default::default()
            },
            HostReport {
                seq: 2,
                generated_at_ms: 2_000,
                journal: journal("b"),
                ..Default::default()
            },
            HostReport {
                seq: 3,
                generated_at_ms: 3_000,
                systemd: unit("failed"),
                ..Default::default()
            },
        ];
        let state = fold(&reports, 0);
        assert_eq!(state.seq, 3);
        assert_eq!(state.systemd.unwrap().units[0].active_state, "failed");
        let messages: Vec<_> = state
            .journal
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["a", "b"]);
        assert!(state.proxy_log.is_none(), "never reported stays absent");
    }

    #[test]
    fn window_and_replay_exclude_incremental_evidence_only() {
        let reports = vec![
            HostReport {
                generated_at_ms: 1_000,
                systemd: unit("active"),
                journal: journal("old"),
                ..Default::default()
            },
            HostReport {
                generated_at_ms: 5_000,
                replayed: true,
                systemd: unit("failed"),
                probes: Some(gw502_proto::v1::ProbesSection::default()),
                journal: journal("replayed"),
                ..Default::default()
            },
            HostReport {
                generated_at_ms: 6_000,
                journal: journal("fresh"),
                ..Default::default()
            },
        ];
        let state = fold(&reports, 2_000);
        assert!(state.probes.is_none(), "replayed probes are history");
        assert_eq!(state.systemd.unwrap().units[0].active_state, "failed");
        let messages: Vec<_> = state
            .journal
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["fresh"]);
    }
}
