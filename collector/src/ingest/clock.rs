//! Agent clocks: every time in a report is the agent's, and the evaluator
//! judges evidence by it (the window is `generated_at_ms` and the entries'
//! times against the collector's now). An agent 5 minutes behind would have
//! its failure fall out of the window before it was seen; one 5 minutes
//! ahead would keep a recovered failure in the window for 5 more minutes
//! and order its reports after everyone else's.
//!
//! So the collector measures each agent's clock on every live report
//! (`generated_at_ms` against the time it received the report) and, past
//! [`TOLERANCE_MS`], moves every time in the report by the measured skew
//! before storing it (the skew is the largest offset of the agent run's
//! last live reports, so a report that was merely late does not count). A replayed report (from the spool, old by design)
//! cannot be measured; it gets the last skew measured for that agent run,
//! or, if it claims to come from the future, is pulled back to now. The
//! skew is logged once per agent run and again when it changes, and kept in
//! `gw502_collector_agent_clock_skew_seconds{host}`. Only reports the store
//! took count as readings: a try the collector refused comes back later.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gw502_proto::v1::HostReport;

/// Skew below this is transit time and ordinary NTP drift: left alone.
pub const TOLERANCE_MS: i64 = 5_000;

/// Live reports the estimate looks back over.
const RECENT: usize = 8;

/// What is known of one host's current agent run.
struct Run {
    instance: String,
    /// `generated_at_ms - received_at_ms` of its last live reports.
    recent: VecDeque<i64>,
    /// The correction in force.
    skew: i64,
}

/// The clock of each host's current agent run.
#[derive(Default)]
pub struct Clocks {
    runs: Mutex<HashMap<String, Run>>,
}

/// A live report's clock reading, recorded once the store took the report
/// ([`Clocks::record`]); a refused try is a late report, not a reading.
pub struct Reading {
    host: String,
    instance: String,
    measured: i64,
}

impl Clocks {
    /// Moves every time in `report` onto the collector's clock by the skew
    /// its agent run is known to have, counting this report's own offset
    /// (`generated_at_ms - received_at_ms`) in. Returns the reading of a
    /// live report, for [`Clocks::record`].
    ///
    /// A report that was delayed (a re-send after an outage) looks like
    /// one from a clock behind; one from a clock ahead cannot look right.
    /// So the estimate is the largest offset of the run's last [`RECENT`]
    /// live reports: one late report does not move it, a clock that is
    /// really behind shows in all of them.
    pub fn correct(&self, report: &mut HostReport, received_at_ms: i64) -> Option<Reading> {
        let measured = report.generated_at_ms - received_at_ms;
        let Ok(runs) = self.runs.lock() else {
            return None;
        };
        let run = runs
            .get(&report.host_id)
            .filter(|r| r.instance == report.agent_instance);
        let known = run.map_or(0, |r| r.skew);
        let skew = if report.replayed {
            // From the spool, old by design: only a time in the future says
            // something about the clock.
            if measured - known > TOLERANCE_MS {
                measured
            } else {
                known
            }
        } else {
            let recent = run.map(|r| r.recent.iter().copied().max().unwrap_or(measured));
            skew_of(recent.map_or(measured, |r| r.max(measured)))
        };
        drop(runs);
        if skew != 0 {
            shift(report, -skew);
        }
        (!report.replayed).then(|| Reading {
            host: report.host_id.clone(),
            instance: report.agent_instance.clone(),
            measured,
        })
    }

    /// Counts a reading of a report the store took: updates the run's
    /// skew, and logs it when it changed.
    pub fn record(&self, reading: Reading) {
        metrics::gauge!("gw502_collector_agent_clock_skew_seconds", "host" => reading.host.clone())
            .set(reading.measured as f64 / 1000.0);
        let Ok(mut runs) = self.runs.lock() else {
            return;
        };
        let run = runs.entry(reading.host.clone()).or_insert_with(|| Run {
            instance: reading.instance.clone(),
            recent: VecDeque::new(),
            skew: 0,
        });
        if run.instance != reading.instance {
            run.instance.clone_from(&reading.instance);
            run.recent.clear();
            run.skew = 0;
        }
        if run.recent.len() == RECENT {
            run.recent.pop_front();
        }
        run.recent.push_back(reading.measured);
        let estimate = run.recent.iter().copied().max().unwrap_or(reading.measured);
        let skew = skew_of(estimate);
        if (skew - run.skew).abs() > TOLERANCE_MS {
            if skew == 0 {
                tracing::info!(host = %reading.host, agent_instance = %reading.instance,
                    skew_ms = estimate, "agent clock is right again");
            } else {
                tracing::warn!(host = %reading.host, agent_instance = %reading.instance,
                    skew_ms = skew,
                    "agent clock is off; its report times are moved onto the collector's clock");
            }
        }
        run.skew = skew;
    }
}

/// The correction for an estimated offset: none within tolerance.
fn skew_of(estimate: i64) -> i64 {
    if estimate.abs() > TOLERANCE_MS {
        estimate
    } else {
        0
    }
}

/// Adds `by` to every time in `report` (times that are 0 mean unknown and
/// stay 0).
fn shift(report: &mut HostReport, by: i64) {
    let mv = |t: &mut i64| {
        if *t != 0 {
            *t += by;
        }
    };
    mv(&mut report.generated_at_ms);
    if let Some(s) = report.systemd.as_mut() {
        for u in &mut s.units {
            mv(&mut u.state_change_ms);
            mv(&mut u.active_enter_ms);
            mv(&mut u.active_exit_ms);
            mv(&mut u.inactive_enter_ms);
        }
    }
    if let Some(s) = report.journal.as_mut() {
        s.entries.iter_mut().for_each(|e| mv(&mut e.at_ms));
        s.events.iter_mut().for_each(|e| mv(&mut e.at_ms));
    }
    if let Some(s) = report.proxy_config.as_mut() {
        s.proxies.iter_mut().for_each(|p| mv(&mut p.changed_at_ms));
    }
    if let Some(s) = report.probes.as_mut() {
        s.probes.iter_mut().for_each(|p| mv(&mut p.at_ms));
    }
    if let Some(s) = report.proxy_log.as_mut() {
        for sig in &mut s.signals {
            mv(&mut sig.first_at_ms);
            mv(&mut sig.last_at_ms);
        }
    }
    if let Some(s) = report.access_log.as_mut() {
        s.counts.iter_mut().for_each(|c| mv(&mut c.last_at_ms));
    }
    if let Some(s) = report.cross_probes.as_mut() {
        s.observations.iter_mut().for_each(|o| mv(&mut o.at_ms));
    }
    if let Some(s) = report.containers.as_mut() {
        for c in &mut s.containers {
            mv(&mut c.started_at_ms);
            mv(&mut c.finished_at_ms);
            c.logs.iter_mut().for_each(|l| mv(&mut l.at_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proto::v1::{JournalEntry, JournalSection};

    fn report(generated_at_ms: i64, replayed: bool) -> HostReport {
        HostReport {
            host_id: "web1".into(),
            agent_instance: "i1".into(),
            seq: 1,
            generated_at_ms,
            replayed,
            journal: Some(JournalSection {
                entries: vec![JournalEntry {
                    at_ms: generated_at_ms - 1_000,
                    ..JournalEntry::default()
                }],
                ..JournalSection::default()
            }),
            ..HostReport::default()
        }
    }

    /// `correct` then `record`, as ingest does for a report it stored;
    /// the correction made.
    fn take(clocks: &Clocks, r: &mut HostReport, received_at_ms: i64) -> i64 {
        let before = r.generated_at_ms;
        if let Some(reading) = clocks.correct(r, received_at_ms) {
            clocks.record(reading);
        }
        before - r.generated_at_ms
    }

    #[test]
    fn a_right_clock_is_left_alone() {
        let clocks = Clocks::default();
        let mut r = report(1_000_000 + 300, false);
        assert_eq!(take(&clocks, &mut r, 1_000_000), 0);
        assert_eq!(r.generated_at_ms, 1_000_300);
    }

    #[test]
    fn a_clock_ahead_or_behind_is_moved_with_every_time_in_the_report() {
        for skew in [300_000, -300_000] {
            let clocks = Clocks::default();
            let mut r = report(1_000_000 + skew, false);
            assert_eq!(take(&clocks, &mut r, 1_000_000), skew);
            assert_eq!(r.generated_at_ms, 1_000_000);
            let entries = &r
                .journal
                .as_ref()
                .map(|j| j.entries.clone())
                .unwrap_or_default();
            assert_eq!(entries[0].at_ms, 999_000);
            // A replay of the same run gets the same correction.
            let mut old = report(900_000 + skew, true);
            assert_eq!(take(&clocks, &mut old, 1_000_000), skew);
            assert_eq!(old.generated_at_ms, 900_000);
        }
    }

    #[test]
    fn a_late_report_is_not_a_clock_behind() {
        let clocks = Clocks::default();
        for at in [1_000_000, 1_001_000, 1_002_000] {
            assert_eq!(take(&clocks, &mut report(at, false), at), 0);
        }
        // A re-send of the newest report, refused for 30 s, then taken.
        let mut late = report(1_002_000, false);
        for received in (1_003_000..1_032_000).step_by(1_000) {
            let mut tried = late.clone();
            assert!(clocks.correct(&mut tried, received).is_some());
        }
        assert_eq!(take(&clocks, &mut late, 1_032_000), 0);
        assert_eq!(late.generated_at_ms, 1_002_000);
    }

    #[test]
    fn a_replay_from_the_future_is_pulled_back_to_now() {
        let clocks = Clocks::default();
        let mut r = report(1_060_000, true);
        assert_eq!(take(&clocks, &mut r, 1_000_000), 60_000);
        assert_eq!(r.generated_at_ms, 1_000_000);
        // An old replay of an unmeasured run is history, not skew.
        let mut old = report(400_000, true);
        assert_eq!(take(&clocks, &mut old, 1_000_000), 0);
    }
}
