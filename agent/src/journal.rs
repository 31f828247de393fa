//! The journal evidence source: what the watched units and systemd said about
//! them since the last report (`journalctl -u app --since ...`).
//!
//! Each collect runs `journalctl -o json` once, resuming after the cursor it
//! saved last time (the first run looks back a few minutes), with matches for
//! the watched units' own output and for PID 1's messages about them. Lines
//! are parsed by the pure [`parse_json_line`] and classified by
//! [`events::Classifier`]. Everything is bounded: the run has a timeout, at
//! most `max_lines` lines are read (the rest wait for the next report), and
//! at most `max_entries`/`max_events` are kept (the rest are counted in
//! `dropped`). The cursor is saved atomically in the state directory, so an
//! agent restart neither repeats nor skips entries.
//!
//! A third match group asks for PID 1's stop, exit and failure messages of
//! every unit. Those of units nobody watches yet are not reported; their
//! names are kept for a while ([`JournalSource::recently_stopped`]) and
//! become cold-start candidates in the next report (see
//! `systemd::candidates`): an app stopped just before the agent started is
//! the likeliest upstream of a target nothing serves.

pub mod events;
pub mod record;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use gw502_proto::v1::JournalSection;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::Command;

use self::events::{Classifier, Evidence};
pub use self::record::{JournalParseError, JournalRecord, parse_json_line};
use crate::source::{Scope, Source, Unavailable};
use crate::systemd::candidates;

/// PID 1's messages that a unit stopped, exited or failed.
const STOP_MESSAGES: &[&str] = &[
    events::UNIT_STOPPED,
    events::UNIT_FAILED,
    events::UNIT_PROCESS_EXIT,
    events::UNIT_RESULT_FAILED,
];

/// How long a stopped unit stays a candidate.
const STOPPED_FOR_MS: i64 = 15 * 60 * 1000;

/// Stopped units remembered at most.
const MAX_STOPPED: usize = 64;

/// Name of the cursor file in the state directory.
const CURSOR_FILE: &str = "journal.cursor";

/// Longest journal line read; longer lines are skipped.
const MAX_LINE_BYTES: usize = 256 * 1024;

/// Knobs of the journal source.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    /// The journalctl program; tests may point it elsewhere.
    pub program: PathBuf,
    /// Arguments put before the source's own (e.g. `--directory=...`).
    pub leading_args: Vec<String>,
    /// Bound on one journalctl run.
    pub timeout: Duration,
    /// Lines read per collect; the rest are read next time.
    pub max_lines: usize,
    /// Warnings kept per report.
    pub max_entries: usize,
    /// Unit events kept per report.
    pub max_events: usize,
    /// How far back the first run looks.
    pub first_lookback: Duration,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            program: PathBuf::from("journalctl"),
            leading_args: Vec::new(),
            timeout: Duration::from_secs(10),
            max_lines: 20_000,
            max_entries: 200,
            max_events: 200,
            first_lookback: Duration::from_secs(300),
        }
    }
}

/// Reads unit events and warnings from the systemd journal.
#[derive(Debug)]
pub struct JournalSource {
    state_dir: PathBuf,
    settings: JournalSettings,
    cursor: Option<String>,
    classifier: Classifier,
    /// Unwatched units seen stopping, exiting or failing: unit to last time (epoch ms).
    stopped: BTreeMap<String, i64>,
}

impl JournalSource {
    /// A source keeping its cursor in `state_dir` (created if missing). A
    /// cursor saved by a previous run is picked up.
    pub fn new(state_dir: PathBuf, settings: JournalSettings) -> Self {
        let cursor = std::fs::read_to_string(state_dir.join(CURSOR_FILE))
            .ok()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        Self {
            state_dir,
            settings,
            cursor,
            classifier: Classifier::default(),
            stopped: BTreeMap::new(),
        }
    }

    /// Units nobody watched that stopped, exited or failed in the last
    /// 15 minutes before `now_ms`, most recent first: cold-start candidates.
    pub fn recently_stopped(&mut self, now_ms: i64) -> Vec<String> {
        self.stopped.retain(|_, at| now_ms - *at <= STOPPED_FOR_MS);
        let mut units: Vec<(&String, &i64)> = self.stopped.iter().collect();
        units.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        units.into_iter().map(|(u, _)| u.clone()).collect()
    }

    /// Remembers a stop of an unwatched, eligible unit, keeping the newest [`MAX_STOPPED`].
    fn note_stop(&mut self, record: &JournalRecord, watched: &dyn Fn(&str) -> bool) {
        let unit = &record.unit;
        if record.pid != Some(1)
            || !STOP_MESSAGES.contains(&record.message_id.as_str())
            || watched(unit)
            || !candidates::eligible(unit, None)
        {
            return;
        }
        let at_ms = i64::try_from(record.realtime_us / 1000).unwrap_or(i64::MAX);
        let slot = self.stopped.entry(unit.clone()).or_insert(at_ms);
        *slot = (*slot).max(at_ms);
        while self.stopped.len() > MAX_STOPPED {
            let oldest = self
                .stopped
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(u, _)| u.clone());
            match oldest {
                Some(u) => self.stopped.remove(&u),
                None => break,
            };
        }
    }

    /// The cursor the next collect resumes after.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The journalctl arguments for this collect.
    pub fn args(&self, scope: &Scope) -> Vec<String> {
        let mut args = self.settings.leading_args.clone();
        args.extend(["-o", "json", "--no-pager", "-q"].map(String::from));
        match &self.cursor {
            Some(cursor) => args.push(format!("--after-cursor={cursor}")),
            None => args.push(format!(
                "--since=-{}s",
                self.settings.first_lookback.as_secs()
            )),
        }
        // Same-field matches are ORed, different fields ANDed, `+` ORs groups:
        // (_SYSTEMD_UNIT=a OR ...) OR (_PID=1 AND (UNIT=a OR ...))
        // OR (_PID=1 AND (MESSAGE_ID=stopped OR ...)).
        if !scope.units.is_empty() {
            args.extend(scope.units.keys().map(|u| format!("_SYSTEMD_UNIT={u}")));
            args.push("+".to_string());
            args.push("_PID=1".to_string());
            args.extend(scope.units.keys().map(|u| format!("UNIT={u}")));
            args.push("+".to_string());
        }
        args.push("_PID=1".to_string());
        args.extend(STOP_MESSAGES.iter().map(|id| format!("MESSAGE_ID={id}")));
        args
    }

    fn save_cursor(&self, cursor: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.state_dir)?;
        let tmp = self.state_dir.join(format!("{CURSOR_FILE}.tmp"));
        std::fs::write(&tmp, cursor)?;
        std::fs::rename(&tmp, self.state_dir.join(CURSOR_FILE))
    }

    async fn run(&mut self, scope: &Scope) -> Result<JournalSection, Unavailable> {
        let mut child = Command::new(&self.settings.program)
            .args(self.args(scope))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Unavailable::because(format!(
                    "no journalctl: {} not found",
                    self.settings.program.display()
                )),
                _ => Unavailable::because(format!("cannot run journalctl: {e}")),
            })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Unavailable::because("journalctl stdout not captured"))?;
        let mut reader = BufReader::new(stdout);
        let mut section = JournalSection::default();
        let mut last_cursor = None;
        let mut line = Vec::new();
        let watched = |u: &str| scope.units.contains_key(u);
        for _ in 0..self.settings.max_lines {
            match read_bounded_line(&mut reader, &mut line, MAX_LINE_BYTES).await {
                Ok(None) => break,
                Ok(Some(false)) => continue,
                Ok(Some(true)) => {}
                Err(e) => {
                    return Err(Unavailable::because(format!(
                        "reading journalctl output: {e}"
                    )));
                }
            }
            let Ok(record) = parse_json_line(&line) else {
                continue;
            };
            self.note_stop(&record, &watched);
            match self.classifier.classify(&record, &watched) {
                Some(Evidence::Event(event)) if section.events.len() < self.settings.max_events => {
                    section.events.push(event);
                }
                Some(Evidence::Entry(entry))
                    if section.entries.len() < self.settings.max_entries =>
                {
                    section.entries.push(entry);
                }
                Some(_) => section.dropped = section.dropped.saturating_add(1),
                None => {}
            }
            last_cursor = Some(record.cursor);
        }
        // Stops journalctl early when max_lines was reached.
        let _ = child.start_kill();
        let status = child.wait().await.ok();
        if last_cursor.is_none()
            && let Some(status) = status.filter(|s| !s.success() && s.code().is_some())
        {
            let mut stderr = String::new();
            if let Some(err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = err.take(4096).read_to_string(&mut stderr).await;
            }
            if self.cursor.take().is_some() {
                // A cursor from a vacuumed or foreign journal: start over.
                tracing::warn!(stderr = %stderr.trim(), "journal cursor rejected, starting from recent entries");
            }
            return Err(Unavailable::because(format!(
                "journalctl failed ({status}): {}",
                record::sanitise(stderr.trim().as_bytes(), 512)
            )));
        }
        if let Some(cursor) = last_cursor {
            if let Err(error) = self.save_cursor(&cursor) {
                tracing::warn!(%error, dir = %self.state_dir.display(), "cannot save journal cursor");
            }
            self.cursor = Some(cursor);
        }
        Ok(section)
    }
}

/// Reads one line into `line` without its newline. `Ok(None)` at end of
/// input; `Ok(Some(false))` when the line exceeded `max` bytes and was
/// skipped.
async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty() || too_long).then_some(!too_long));
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long && line.len() + chunk.len() <= max {
            line.extend_from_slice(chunk);
        } else {
            too_long = true;
            line.clear();
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(!too_long));
        }
    }
}

impl Source for JournalSource {
    type Section = JournalSection;

    fn name(&self) -> &'static str {
        "journal"
    }

    async fn collect(&mut self, scope: &Scope) -> Result<JournalSection, Unavailable> {
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.run(scope)).await {
            Ok(result) => result,
            Err(_) => Err(Unavailable::because(format!(
                "journalctl did not finish within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
