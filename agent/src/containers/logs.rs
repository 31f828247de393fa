//! The warning and error lines of a container's log, from the answer of
//! `GET /containers/{id}/logs?stdout=1&stderr=1&timestamps=1&since=S&tail=N`.
//!
//! A container without a TTY gets its log as multiplexed frames (an 8-byte
//! header: stream byte 1 stdout / 2 stderr, three zero bytes, a big-endian
//! payload length); a TTY container's log is raw text. With `timestamps=1`
//! every line starts with an RFC 3339 time. Lines are kept when they look
//! like a warning or an error, then sanitized (control characters escaped,
//! length capped) because they are written by the application, not by us.

use gw502_proto::v1::ContainerLogLine;

use super::model::epoch_ms;

/// Longest line kept, in characters.
pub const MAX_LINE_CHARS: usize = 240;

/// Words that make a line a warning or an error (matched case-insensitively).
const WORDS: &[&str] = &[
    "error",
    "warn",
    "fatal",
    "panic",
    "exception",
    "critical",
    "traceback",
    "failed",
    "refused",
    "denied",
    "killed",
    "out of memory",
    "emerg",
];

/// Splits a log answer into `(stream, line)` pairs.
pub fn demux(body: &[u8], tty: bool) -> Vec<(&'static str, String)> {
    if tty || !looks_multiplexed(body) {
        return text_lines("stdout", body);
    }
    let mut out = Vec::new();
    let mut rest = body;
    while rest.len() >= 8 {
        let stream = match rest[0] {
            2 => "stderr",
            _ => "stdout",
        };
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend(text_lines(stream, &rest[8..end]));
        rest = &rest[end..];
    }
    out
}

fn looks_multiplexed(body: &[u8]) -> bool {
    body.len() >= 8 && matches!(body[0], 0..=2) && body[1..4] == [0, 0, 0]
}

fn text_lines(stream: &'static str, bytes: &[u8]) -> Vec<(&'static str, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| (stream, l.to_string()))
        .collect()
}

/// Whether a line reads as a warning or an error.
pub fn is_notable(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
}

/// The warning and error lines of a log answer, newest last, at most `max`.
pub fn notable(body: &[u8], tty: bool, max: usize) -> Vec<ContainerLogLine> {
    let mut lines: Vec<ContainerLogLine> = demux(body, tty)
        .into_iter()
        .filter_map(|(stream, line)| {
            let (at_ms, text) = match line.split_once(' ') {
                Some((stamp, text)) if epoch_ms(stamp) > 0 => (epoch_ms(stamp), text),
                _ => (0, line.as_str()),
            };
            is_notable(text).then(|| ContainerLogLine {
                at_ms,
                stream: stream.to_string(),
                line: sanitize(text.trim_end(), MAX_LINE_CHARS),
            })
        })
        .collect();
    let skip = lines.len().saturating_sub(max);
    lines.drain(..skip);
    lines
}

/// Escapes control characters and caps the length, marking a cut with `…`.
pub fn sanitize(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in text.chars() {
        let piece: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        if n + piece.len() > max_chars {
            out.push('…');
            break;
        }
        n += piece.len();
        out.extend(piece);
    }
    out
}
