//! The pure parser for one line of `journalctl -o json` output.
//!
//! journalctl prints each entry as one JSON object whose values are strings,
//! or arrays of byte values when the field is not printable UTF-8 (control
//! characters, invalid bytes), or arrays of those when a field repeats, or
//! `null` when it was too large to show. [`parse_json_line`] reads the fields
//! the journal source needs and turns MESSAGE into safe text: invalid UTF-8
//! replaced, control characters escaped, length capped.

use serde_json::Value;

/// Longest MESSAGE kept, in bytes; longer ones end in `…`.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Longest field other than MESSAGE kept, in bytes.
const MAX_FIELD_BYTES: usize = 256;

/// The fields of one journal entry that the journal source uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalRecord {
    /// `__CURSOR`: where to resume after this entry.
    pub cursor: String,
    /// `__REALTIME_TIMESTAMP` in microseconds since the epoch.
    pub realtime_us: u64,
    /// `PRIORITY` (0 emerg .. 7 debug), when present.
    pub priority: Option<u8>,
    /// `MESSAGE`, sanitised and capped.
    pub message: String,
    /// `MESSAGE_ID` (systemd catalog id), lowercase hex.
    pub message_id: String,
    /// `_SYSTEMD_UNIT`: the unit whose process logged the entry.
    pub systemd_unit: String,
    /// `UNIT`: the unit PID 1 is talking about.
    pub unit: String,
    /// `_PID` of the logging process.
    pub pid: Option<u32>,
    /// `SYSLOG_IDENTIFIER`.
    pub identifier: String,
    /// `JOB_TYPE` (start, stop, restart, reload, ...).
    pub job_type: String,
    /// `JOB_RESULT` (done, failed, timeout, dependency, ...).
    pub job_result: String,
    /// `EXIT_CODE` (exited, killed, dumped).
    pub exit_code: String,
    /// `EXIT_STATUS` (a number or a signal name).
    pub exit_status: String,
    /// `UNIT_RESULT` (exit-code, signal, timeout, ...).
    pub unit_result: String,
    /// `N_RESTARTS`: the restart counter in "restart scheduled" entries.
    pub n_restarts: Option<u32>,
}

/// Why a line is not a journal entry.
#[derive(Debug, thiserror::Error)]
pub enum JournalParseError {
    /// Not JSON at all.
    #[error("journal line is not json: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an object.
    #[error("journal line is not a json object")]
    NotAnObject,
    /// An object without `__CURSOR`, so the source could not resume after it.
    #[error("journal entry has no __CURSOR")]
    NoCursor,
}

/// Parses one `journalctl -o json` line.
pub fn parse_json_line(line: &[u8]) -> Result<JournalRecord, JournalParseError> {
    let value: Value = serde_json::from_slice(line)?;
    let Value::Object(fields) = value else {
        return Err(JournalParseError::NotAnObject);
    };
    let text = |key: &str, cap: usize| {
        fields
            .get(key)
            .and_then(field_bytes)
            .map(|bytes| sanitise(&bytes, cap))
            .unwrap_or_default()
    };
    let number = |key: &str| text(key, 32).parse::<u64>().ok();
    let cursor = text("__CURSOR", MAX_FIELD_BYTES * 2);
    if cursor.is_empty() {
        return Err(JournalParseError::NoCursor);
    }
    Ok(JournalRecord {
        cursor,
        realtime_us: number("__REALTIME_TIMESTAMP").unwrap_or(0),
        priority: number("PRIORITY").and_then(|p| u8::try_from(p).ok()),
        message: text("MESSAGE", MAX_MESSAGE_BYTES),
        message_id: text("MESSAGE_ID", 64).to_ascii_lowercase(),
        systemd_unit: text("_SYSTEMD_UNIT", MAX_FIELD_BYTES),
        unit: text("UNIT", MAX_FIELD_BYTES),
        pid: number("_PID").and_then(|p| u32::try_from(p).ok()),
        identifier: text("SYSLOG_IDENTIFIER", MAX_FIELD_BYTES),
        job_type: text("JOB_TYPE", MAX_FIELD_BYTES),
        job_result: text("JOB_RESULT", MAX_FIELD_BYTES),
        exit_code: text("EXIT_CODE", MAX_FIELD_BYTES),
        exit_status: text("EXIT_STATUS", MAX_FIELD_BYTES),
        unit_result: text("UNIT_RESULT", MAX_FIELD_BYTES),
        n_restarts: number("N_RESTARTS").and_then(|n| u32::try_from(n).ok()),
    })
}

/// The raw bytes of a field: a string, an array of byte values, or for a
/// repeated field the first value. `null` (too large to print) is `None`.
fn field_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Array(items) if items.iter().all(Value::is_number) => items
            .iter()
            .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect(),
        Value::Array(items) => items.first().and_then(field_bytes),
        _ => None,
    }
}

/// Decodes bytes as UTF-8 (invalid sequences become U+FFFD), escapes control
/// characters (`\n`, `\t`, `\r`, else `\xNN`/`\u{NN}`) and caps the result at
/// `cap` bytes on a character boundary.
pub fn sanitise(bytes: &[u8], cap: usize) -> String {
    let decoded = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(decoded.len().min(cap));
    for c in decoded.trim_end_matches(['\n', '\r']).chars() {
        let escaped: Option<String> = match c {
            '\n' => Some("\\n".into()),
            '\t' => Some("\\t".into()),
            '\r' => Some("\\r".into()),
            c if c.is_control() && (c as u32) < 0x100 => Some(format!("\\x{:02x}", c as u32)),
            c if c.is_control() => Some(format!("\\u{{{:x}}}", c as u32)),
            _ => None,
        };
        let piece_len = escaped.as_ref().map_or(c.len_utf8(), String::len);
        if out.len() + piece_len > cap {
            out.push('…');
            break;
        }
        match escaped {
            Some(text) => out.push_str(&text),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_array_messages_are_decoded_and_escaped() {
        let line = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795636119933123","PRIORITY":"4","MESSAGE":[99,111,108,27,91,51,49,109,255,9,120],"_PID":"55"}"#;
        let record = parse_json_line(line).unwrap();
        assert_eq!(record.message, "col\\x1b[31m\u{fffd}\\tx");
        assert_eq!(record.priority, Some(4));
        assert_eq!(record.pid, Some(55));
        assert_eq!(record.realtime_us, 1_795_636_119_933_123);
    }

    #[test]
    fn repeated_and_null_fields_do_not_fail() {
        let line = br#"{"__CURSOR":"c","MESSAGE":null,"UNIT":["a.service","b.service"],"MESSAGE_ID":[[52,50]]}"#;
        let record = parse_json_line(line).unwrap();
        assert_eq!(record.message, "");
        assert_eq!(record.unit, "a.service");
        assert_eq!(record.message_id, "42");
    }

    #[test]
    fn non_entries_are_errors() {
        assert!(matches!(
            parse_json_line(b"not json"),
            Err(JournalParseError::Json(_))
        ));
        assert!(matches!(
            parse_json_line(b"[1,2]"),
            Err(JournalParseError::NotAnObject)
        ));
        assert!(matches!(
            parse_json_line(br#"{"MESSAGE":"x"}"#),
            Err(JournalParseError::NoCursor)
        ));
    }

    #[test]
    fn sanitise_caps_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let out = sanitise(long.as_bytes(), 11);
        assert_eq!(out, "ééééé…");
        assert_eq!(sanitise(b"a\nb\x7f\n", 100), "a\\nb\\x7f");
        assert_eq!(sanitise("x\u{85}y".as_bytes(), 100), "x\\x85y");
    }
}
