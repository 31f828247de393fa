//! Tests of the journal source's process handling, bounds and cursor.
//!
//! There is no journal on the build machine (PID 1 is not systemd), so most
//! tests run `sh` in place of journalctl: it records the arguments it got and
//! prints REAL captured `journalctl -o json` lines from the fixtures. Real
//! journalctl inside a systemd host is exercised by the lab test
//! `agent_sources_on_a_real_host` in `tests/tests/lab_scenarios.rs`.

use std::path::{Path, PathBuf};

use super::*;
use crate::source::UnitRole;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/journal/lifecycle.json"
);

/// `sh -c SCRIPT <lines file>`: appends its arguments to `<file>.args`, then
/// prints the lines file.
fn stand_in(dir: &Path) -> JournalSettings {
    let lines = dir.join("lines.json");
    std::fs::copy(FIXTURE, &lines).unwrap();
    JournalSettings {
        program: PathBuf::from("sh"),
        leading_args: vec![
            "-c".to_string(),
            r#"printf '%s\n' "$@" >> "$0.args"; cat "$0""#.to_string(),
            lines.to_str().unwrap().to_string(),
        ],
        ..JournalSettings::default()
    }
}

fn scope() -> Scope {
    let mut scope = Scope::default();
    scope.watch("gw502-demo.service", UnitRole::Upstream);
    scope.watch("gw502-crash.service", UnitRole::Listener);
    scope
}

fn last_cursor() -> String {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    parse_json_line(text.lines().last().unwrap().as_bytes())
        .unwrap()
        .cursor
}

#[tokio::test]
async fn first_run_looks_back_then_resumes_after_the_saved_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let settings = stand_in(dir.path());
    let mut source = JournalSource::new(state.clone(), settings.clone());
    let section = source.collect(&scope()).await.unwrap();
    assert_eq!(section.entries.len(), 13);
    assert_eq!(
        section
            .events
            .iter()
            .filter(|e| e.kind == "restart")
            .count(),
        4
    );
    assert_eq!(section.dropped, 0);
    let args = std::fs::read_to_string(dir.path().join("lines.json.args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        vec![
            "-o",
            "json",
            "--no-pager",
            "-q",
            "--since=-300s",
            "_SYSTEMD_UNIT=gw502-crash.service",
            "_SYSTEMD_UNIT=gw502-demo.service",
            "+",
            "_PID=1",
            "UNIT=gw502-crash.service",
            "UNIT=gw502-demo.service",
            "+",
            "_PID=1",
            "MESSAGE_ID=9d1aaa27d60140bd96365438aad20286",
            "MESSAGE_ID=be02cf6855d2428ba40df7e9d022f03d",
            "MESSAGE_ID=98e322203f7a4ed290d09fe03c09fe15",
            "MESSAGE_ID=d9b373ed55a64feb8242e02dbe79a49c",
        ]
    );
    // The cursor survives an agent restart: a new source resumes after it.
    let saved = std::fs::read_to_string(state.join(CURSOR_FILE)).unwrap();
    assert_eq!(saved, last_cursor());
    assert!(!state.join("journal.cursor.tmp").exists());
    let restarted = JournalSource::new(state, settings);
    assert_eq!(restarted.cursor(), Some(saved.as_str()));
    assert!(
        restarted
            .args(&scope())
            .contains(&format!("--after-cursor={saved}"))
    );
}

#[tokio::test]
async fn bounds_cap_lines_entries_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let settings = JournalSettings {
        max_entries: 2,
        max_events: 3,
        ..stand_in(dir.path())
    };
    let mut source = JournalSource::new(dir.path().join("state"), settings.clone());
    let section = source.collect(&scope()).await.unwrap();
    assert_eq!(section.entries.len(), 2);
    assert_eq!(section.events.len(), 3);
    let events_total = 22;
    assert_eq!(section.dropped, (13 - 2) + (events_total - 3));

    // Only 5 lines read: the cursor stops at the 5th, the rest wait.
    let mut source = JournalSource::new(
        dir.path().join("state2"),
        JournalSettings {
            max_lines: 5,
            ..settings
        },
    );
    source.collect(&scope()).await.unwrap();
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let fifth = parse_json_line(text.lines().nth(4).unwrap().as_bytes()).unwrap();
    assert_eq!(source.cursor(), Some(fifth.cursor.as_str()));
}

#[tokio::test]
async fn unwatched_units_that_stopped_become_candidates_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let mut only_demo = Scope::default();
    only_demo.watch("gw502-demo.service", UnitRole::Upstream);
    let mut source = JournalSource::new(dir.path().join("state"), stand_in(dir.path()));
    let section = source.collect(&only_demo).await.unwrap();
    // The crash unit's events are not reported (nobody watches it) ...
    assert!(
        section
            .events
            .iter()
            .all(|e| e.unit == "gw502-demo.service")
    );
    // ... but its exits and failure make it a candidate, the watched demo unit is not one.
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let last_crash_ms = text
        .lines()
        .map(|l| parse_json_line(l.as_bytes()).unwrap())
        .filter(|r| r.pid == Some(1) && r.unit == "gw502-crash.service")
        .filter(|r| STOP_MESSAGES.contains(&r.message_id.as_str()))
        .map(|r| i64::try_from(r.realtime_us / 1000).unwrap())
        .max()
        .unwrap();
    assert_eq!(
        source.recently_stopped(last_crash_ms + 60_000),
        ["gw502-crash.service"]
    );
    assert!(
        source
            .recently_stopped(last_crash_ms + STOPPED_FOR_MS + 1)
            .is_empty()
    );
}

#[tokio::test]
async fn with_no_watched_unit_only_stops_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let source = JournalSource::new(dir.path().join("state"), JournalSettings::default());
    let args = source.args(&Scope::default());
    assert!(!args.contains(&"+".to_string()), "{args:?}");
    assert_eq!(
        args.iter().filter(|a| a.starts_with("MESSAGE_ID=")).count(),
        STOP_MESSAGES.len()
    );
}

#[tokio::test]
async fn missing_journalctl_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let settings = JournalSettings {
        program: PathBuf::from("/nonexistent/journalctl"),
        ..JournalSettings::default()
    };
    let err = JournalSource::new(dir.path().to_path_buf(), settings)
        .collect(&scope())
        .await
        .unwrap_err();
    assert_eq!(err.0, "no journalctl: /nonexistent/journalctl not found");
}

#[tokio::test(start_paused = true)]
async fn a_hung_journalctl_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let settings = JournalSettings {
        program: PathBuf::from("sh"),
        leading_args: vec!["-c".to_string(), "exec sleep 30".to_string()],
        timeout: Duration::from_secs(2),
        ..JournalSettings::default()
    };
    let err = JournalSource::new(dir.path().to_path_buf(), settings)
        .collect(&scope())
        .await
        .unwrap_err();
    assert_eq!(err.0, "journalctl did not finish within 2000 ms");
}

#[tokio::test]
async fn rejected_cursor_is_reported_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(CURSOR_FILE), "s=bogus").unwrap();
    // Real journalctl rejects a bogus cursor before looking for journal files.
    let mut source = JournalSource::new(dir.path().to_path_buf(), JournalSettings::default());
    assert_eq!(source.cursor(), Some("s=bogus"));
    let err = source.collect(&scope()).await.unwrap_err();
    assert!(err.0.starts_with("journalctl failed"), "{err}");
    assert!(err.0.contains("Failed to seek to cursor"), "{err}");
    assert_eq!(source.cursor(), None);
}

#[tokio::test]
async fn real_journalctl_without_a_journal_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = JournalSettings {
        leading_args: vec![format!("--directory={}", dir.path().display())],
        ..JournalSettings::default()
    };
    let mut source = JournalSource::new(dir.path().join("state"), settings);
    let section = source.collect(&scope()).await.unwrap();
    assert!(section.entries.is_empty() && section.events.is_empty());
    assert_eq!(source.cursor(), None);
}

#[tokio::test]
async fn over_long_lines_are_skipped_not_buffered() {
    let mut input: &[u8] = b"short\n0123456789abcdef\nlast";
    let mut reader = BufReader::with_capacity(4, &mut input);
    let mut line = Vec::new();
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
        Some(true)
    );
    assert_eq!(line, b"short");
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
        Some(false)
    );
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
        Some(true)
    );
    assert_eq!(line, b"last");
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 8).await.unwrap(),
        None
    );
}
