//! A proxy's log read from its unit's journal when the file its config names
//! does not exist. HAProxy logs to syslog (`log /dev/log local0`), and Debian's
//! `/etc/rsyslog.d/49-haproxy.conf` copies those lines into
//! `/var/log/haproxy.log` only where rsyslog runs. On a host with journald alone
//! (a Debian 12 install without rsyslog, every lab host) the file never appears
//! and the lines are in the journal under `_SYSTEMD_UNIT=haproxy.service`; without
//! this fallback the proxy-log source had no HAProxy line at all, and a fault
//! whose only answer is HAProxy's own (a `sC` 503 after its connect retries) came
//! out without a status.
//!
//! [`UnitJournal`] runs `journalctl _SYSTEMD_UNIT=<unit> -o json` once per unit
//! and call, resuming after the cursor it kept; the first call starts at the
//! call's second, as the tailer starts at the end of a file (history is not
//! replayed). Reads are bounded in lines and time, like the journal source.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::journal::parse_json_line;

/// Longest message kept per line (the proxy parsers cut at their own bound).
const MAX_MESSAGE: usize = 16 * 1024;

/// Where to resume reading a unit's journal.
#[derive(Debug, Clone)]
enum Resume {
    /// After this `__CURSOR`.
    Cursor(String),
    /// From this second (epoch), until the first entry gives a cursor.
    Since(i64),
}

/// Reads proxy units' own journal lines between calls.
#[derive(Debug)]
pub struct UnitJournal {
    program: PathBuf,
    timeout: Duration,
    max_lines: usize,
    resume: BTreeMap<String, Resume>,
}

impl Default for UnitJournal {
    fn default() -> Self {
        Self::new(PathBuf::from("journalctl"))
    }
}

impl UnitJournal {
    /// Runs `program` as journalctl (tests pass a stand-in).
    pub fn new(program: PathBuf) -> Self {
        Self {
            program,
            timeout: Duration::from_secs(10),
            max_lines: 20_000,
            resume: BTreeMap::new(),
        }
    }

    /// The journalctl arguments for `unit`, resuming as kept (`now_s` on the first call).
    pub fn args(&mut self, unit: &str, now_s: i64) -> Vec<String> {
        let resume = self
            .resume
            .entry(unit.to_string())
            .or_insert(Resume::Since(now_s));
        let mut args: Vec<String> = ["-o", "json", "--no-pager", "-q"]
            .map(String::from)
            .to_vec();
        args.push(match resume {
            Resume::Cursor(c) => format!("--after-cursor={c}"),
            Resume::Since(s) => format!("--since=@{s}"),
        });
        args.push(format!("_SYSTEMD_UNIT={unit}"));
        args
    }

    /// Forgets units no longer asked for.
    pub fn retain(&mut self, units: &[String]) {
        self.resume.retain(|u, _| units.contains(u));
    }

    /// The messages `unit` logged since the last call, oldest first.
    pub async fn read(&mut self, unit: &str, now_s: i64) -> Result<Vec<Vec<u8>>, String> {
        let args = self.args(unit, now_s);
        let run = run(&self.program, &args, self.max_lines);
        let (lines, cursor) = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| format!("journalctl for {unit} timed out"))??;
        if let Some(c) = cursor {
            self.resume.insert(unit.to_string(), Resume::Cursor(c));
        }
        Ok(lines)
    }
}

/// Messages and the last cursor of journalctl's JSON lines (pure).
pub fn messages(output: &[u8]) -> (Vec<Vec<u8>>, Option<String>) {
    let mut lines = Vec::new();
    let mut cursor = None;
    for raw in output.split(|&b| b == b'\n') {
        let Ok(record) = parse_json_line(raw) else {
            continue;
        };
        let mut message = record.message.into_bytes();
        message.truncate(MAX_MESSAGE);
        lines.push(message);
        cursor = Some(record.cursor);
    }
    (lines, cursor)
}

async fn run(
    program: &PathBuf,
    args: &[String],
    max_lines: usize,
) -> Result<(Vec<Vec<u8>>, Option<String>), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "journalctl stdout not captured".to_string())?;
    let mut reader = BufReader::new(stdout);
    let mut out = Vec::new();
    let mut line = Vec::new();
    for _ in 0..max_lines {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => out.extend_from_slice(&line),
            Err(e) => return Err(format!("reading journalctl output: {e}")),
        }
    }
    let _ = child.start_kill();
    let status = child.wait().await.ok();
    let (lines, cursor) = messages(&out);
    if cursor.is_none()
        && let Some(status) = status.filter(|s| !s.success() && s.code().is_some())
    {
        return Err(format!("journalctl failed ({status})"));
    }
    Ok((lines, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two entries of `journalctl _SYSTEMD_UNIT=haproxy.service -o json` on a lab host
    /// (see `agent/fixtures/haproxy-journal/README.md`).
    const CAPTURE: &[u8] = include_bytes!("../../fixtures/haproxy-journal/haproxy.json");

    #[test]
    fn a_captured_haproxy_journal_gives_its_request_lines() {
        let (lines, cursor) = messages(CAPTURE);
        assert!(lines.len() >= 2, "{}", lines.len());
        assert!(cursor.is_some_and(|c| c.starts_with("s=")));
        let parsed: Vec<_> = lines
            .iter()
            .filter_map(|l| crate::proxy_log::parse_error_line("haproxy", l))
            .collect();
        assert!(
            parsed
                .iter()
                .any(|l| l.status == 503 && !l.cause.is_empty()),
            "{parsed:?}"
        );
    }

    #[test]
    fn resumes_after_the_cursor_and_starts_now() {
        let mut j = UnitJournal::default();
        let first = j.args("haproxy.service", 1_796_150_668);
        assert!(first.contains(&"--since=@1796150668".to_string()));
        assert!(first.contains(&"_SYSTEMD_UNIT=haproxy.service".to_string()));
        let (_, cursor) = messages(CAPTURE);
        j.resume.insert(
            "haproxy.service".into(),
            Resume::Cursor(cursor.clone().unwrap_or_default()),
        );
        let next = j.args("haproxy.service", 1_796_150_700);
        assert!(next.contains(&format!("--after-cursor={}", cursor.unwrap_or_default())));
        j.retain(&[]);
        assert!(j.resume.is_empty());
    }
}
