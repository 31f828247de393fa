//! Turns parsed journal records into evidence: systemd's unit lifecycle
//! messages become [`UnitEvent`]s, warnings and worse from the watched units
//! (and their lines naming a failing dependency, at any level) become
//! [`JournalEntry`]s, everything else is ignored.
//!
//! Lifecycle messages are recognised by their catalog MESSAGE_ID (see
//! systemd's `catalog/systemd.catalog.in`), never by their wording. The ids
//! below were checked against a real systemd 252 journal; the captured lines
//! are in `agent/fixtures/journal/`.

use std::collections::HashSet;

use gw502_proto::v1::{JournalEntry, UnitEvent};
use gw502_vocab::dependency::names_failing_dependency;

use super::record::JournalRecord;

/// `Started <unit>`: a start job finished.
pub const UNIT_STARTED: &str = "39f53479d3a045ac8e11786248231fbf";
/// `Failed to start <unit>`: a start job failed.
pub const UNIT_FAILED: &str = "be02cf6855d2428ba40df7e9d022f03d";
/// `Reloaded <unit>`: a reload job finished.
pub const UNIT_RELOADED: &str = "7b05ebc668384222baa8881179cfda54";
/// `Stopped <unit>`: a stop job finished (JOB_TYPE=restart within a restart).
pub const UNIT_STOPPED: &str = "9d1aaa27d60140bd96365438aad20286";
/// `<unit>: Scheduled restart job, restart counter is at N`.
pub const UNIT_RESTART_SCHEDULED: &str = "5eb03494b6584870a536b337290809b3";
/// `<unit>: Main process exited, code=..., status=...`.
pub const UNIT_PROCESS_EXIT: &str = "98e322203f7a4ed290d09fe03c09fe15";
/// `<unit>: Failed with result '...'`: the unit entered the failed state.
pub const UNIT_RESULT_FAILED: &str = "d9b373ed55a64feb8242e02dbe79a49c";

/// What one record is evidence of.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A unit lifecycle event.
    Event(UnitEvent),
    /// A warning or worse from a watched unit.
    Entry(JournalEntry),
}

/// Classifies records, remembering across calls which units have an
/// automatic restart pending so one restart yields one `restart` event.
#[derive(Debug, Default)]
pub struct Classifier {
    scheduled: HashSet<String>,
}

impl Classifier {
    /// Evidence in `record`, if any. `watched` decides which units count.
    pub fn classify(
        &mut self,
        record: &JournalRecord,
        watched: &dyn Fn(&str) -> bool,
    ) -> Option<Evidence> {
        let at_ms = i64::try_from(record.realtime_us / 1000).unwrap_or(i64::MAX);
        if record.pid == Some(1) && !record.unit.is_empty() && watched(&record.unit) {
            if let Some((kind, detail)) = self.lifecycle(record) {
                return Some(Evidence::Event(UnitEvent {
                    at_ms,
                    unit: record.unit.clone(),
                    kind: kind.to_string(),
                    detail,
                }));
            }
            if !record.message_id.is_empty() {
                // Other catalogued PID 1 chatter (stopping, reloading, ...).
                return None;
            }
        }
        let unit = if record.systemd_unit.is_empty() || record.pid == Some(1) {
            &record.unit
        } else {
            &record.systemd_unit
        };
        // Warnings and worse; and, at any level, an app saying a dependency
        // fails: apps write those to stdout/stderr, which journald records at
        // info (the matcher is the collector's, `gw502_vocab::dependency`).
        let wanted =
            record.priority.is_some_and(|p| p <= 4) || names_failing_dependency(&record.message);
        if wanted && !unit.is_empty() && watched(unit) {
            return Some(Evidence::Entry(JournalEntry {
                at_ms,
                unit: unit.clone(),
                priority: u32::from(record.priority.unwrap_or(4)),
                identifier: record.identifier.clone(),
                message: record.message.clone(),
            }));
        }
        None
    }

    fn lifecycle(&mut self, r: &JournalRecord) -> Option<(&'static str, String)> {
        let job = |r: &JournalRecord| format!("job {} {}", r.job_type, r.job_result);
        Some(match r.message_id.as_str() {
            UNIT_STARTED => ("start", job(r)),
            UNIT_FAILED => ("fail", job(r)),
            UNIT_RELOADED => ("reload", job(r)),
            UNIT_STOPPED if r.job_type == "restart" => {
                if self.scheduled.remove(&r.unit) {
                    // Already reported when the restart was scheduled.
                    return None;
                }
                ("restart", job(r))
            }
            UNIT_STOPPED => ("stop", job(r)),
            UNIT_RESTART_SCHEDULED => {
                self.scheduled.insert(r.unit.clone());
                let counter = r
                    .n_restarts
                    .map(|n| format!(", restart counter {n}"))
                    .unwrap_or_default();
                ("restart", format!("automatic{counter}"))
            }
            UNIT_PROCESS_EXIT => (
                "exit",
                format!("code={} status={}", r.exit_code, r.exit_status),
            ),
            UNIT_RESULT_FAILED => ("fail", format!("result {}", r.unit_result)),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::parse_json_line;

    const LIFECYCLE: &str = include_str!("../../fixtures/journal/lifecycle.json");

    fn classify_fixture(units: &[&str]) -> Vec<Evidence> {
        let mut classifier = Classifier::default();
        let watched = |u: &str| units.contains(&u);
        LIFECYCLE
            .lines()
            .map(|line| parse_json_line(line.as_bytes()).unwrap())
            .filter_map(|r| classifier.classify(&r, &watched))
            .collect()
    }

    fn kinds(evidence: &[Evidence], unit: &str) -> Vec<String> {
        evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Event(ev) if ev.unit == unit => {
                    Some(format!("{} {}", ev.kind, ev.detail))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn demo_unit_lifecycle_from_a_real_journal() {
        let evidence = classify_fixture(&["gw502-demo.service", "gw502-crash.service"]);
        assert_eq!(
            kinds(&evidence, "gw502-demo.service"),
            vec![
                "start job start done",
                "reload job reload done",
                "restart job restart done",
                "start job start done",
                "stop job stop done",
                "start job start done",
                "exit code=killed status=9",
                "fail result signal",
            ]
        );
    }

    #[test]
    fn crash_loop_gives_one_restart_per_cycle() {
        let evidence = classify_fixture(&["gw502-crash.service"]);
        let kinds = kinds(&evidence, "gw502-crash.service");
        assert_eq!(kinds.iter().filter(|k| k.starts_with("restart")).count(), 3);
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.starts_with("exit code=exited status=3"))
                .count(),
            3
        );
        assert!(kinds.contains(&"restart automatic, restart counter 3".to_string()));
        assert_eq!(kinds.last().unwrap(), "fail job start failed");
        // The demo unit is not watched here, so none of its lines count.
        assert!(evidence.iter().all(|e| match e {
            Evidence::Event(ev) => ev.unit == "gw502-crash.service",
            Evidence::Entry(en) => en.unit == "gw502-crash.service",
        }));
    }

    #[test]
    fn dependency_failures_on_stderr_are_kept_other_info_lines_are_not() {
        let mut classifier = Classifier::default();
        let watched = |u: &str| u == "shop.service";
        let line = |message: &str| {
            format!(
                r#"{{"__CURSOR":"s=1;i=9","__REALTIME_TIMESTAMP":"1714557600000000","PRIORITY":"6","_SYSTEMD_UNIT":"shop.service","SYSLOG_IDENTIFIER":"gunicorn","_PID":"812","MESSAGE":{}}}"#,
                serde_json::to_string(message).unwrap()
            )
        };
        let traceback = "psycopg2.OperationalError: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused";
        let kept = classifier.classify(
            &parse_json_line(line(traceback).as_bytes()).unwrap(),
            &watched,
        );
        assert!(
            matches!(&kept, Some(Evidence::Entry(e)) if e.priority == 6 && e.message == traceback),
            "{kept:?}"
        );
        let access = "10.0.0.1 - - \"GET /checkout HTTP/1.1\" 500 12";
        let dropped =
            classifier.classify(&parse_json_line(line(access).as_bytes()).unwrap(), &watched);
        assert_eq!(dropped, None);
    }

    #[test]
    fn warnings_from_the_unit_become_escaped_entries() {
        let evidence = classify_fixture(&["gw502-demo.service", "gw502-crash.service"]);
        let entries: Vec<&JournalEntry> = evidence
            .iter()
            .filter_map(|e| match e {
                Evidence::Entry(en) => Some(en),
                _ => None,
            })
            .collect();
        // 3 starts of demo x 3 warning lines, 3 crash lines, plus PID 1's
        // uncatalogued "Start request repeated too quickly" warning.
        assert_eq!(entries.len(), 13);
        assert!(
            entries
                .iter()
                .any(|e| e.message == "demo: bad byte \u{fffd} in name" && e.priority == 3)
        );
        assert!(
            entries
                .iter()
                .any(|e| e.message == "demo: color \\x1b[31mred\\x1b[0m and tab\\tend")
        );
        assert!(
            entries
                .iter()
                .any(|e| e.message.starts_with("crash: cannot connect to database"))
        );
        assert!(
            entries
                .iter()
                .all(|e| e.priority <= 4 && e.at_ms > 1_600_000_000_000)
        );
    }
}
