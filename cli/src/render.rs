//! Text output for people: tables, the request chain, and the views of
//! incidents, hosts, sites, deliveries and explain results.
//!
//! Every string that came from the collector (and so, often, from a log line
//! or a remote server) goes through [`escape`] before it reaches the
//! terminal, so a hostile log line cannot move the cursor, clear the screen
//! or reorder text; table cells are also truncated to a sane width.

pub mod chain;
pub mod fleet;
pub mod incidents;
pub mod table;

use std::borrow::Cow;

/// Widest a table cell gets before it is truncated with `…`.
pub const MAX_CELL: usize = 48;

/// Replaces control characters (C0, DEL, C1) and bidirectional overrides by
/// `\u{..}` escapes, so remote text cannot drive the terminal.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Escapes and cuts `s` to at most `max` characters, ending in `…` when cut.
pub fn cell(s: &str, max: usize) -> String {
    let escaped = escape(s);
    if escaped.chars().count() <= max {
        return escaped.into_owned();
    }
    let mut out: String = escaped.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub use gw502_vocab::contract::rfc3339;

/// [`rfc3339`] or `-`.
pub fn time_or_dash(ms: i64) -> String {
    rfc3339(ms).unwrap_or_else(|| "-".into())
}

/// How long ago `at_ms` was: `42s`, `5m`, `3h`, `2d`; `-` when unset.
pub fn age(now_ms: i64, at_ms: i64) -> String {
    if at_ms == 0 {
        return "-".into();
    }
    let secs = (now_ms - at_ms).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// A duration in milliseconds, compactly: `500ms`, `30s`, `5m`.
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0 => "-".into(),
        m if m < 1_000 => format!("{m}ms"),
        m if m % 60_000 == 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{:.1}s", m as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_strings_are_escaped() {
        let hostile = "ok\x1b[2J\x1b]0;pwned\x07\r\nnext\u{202e}txt\u{9b}31m\x7f";
        let out = escape(hostile);
        assert!(!out.chars().any(|c| c.is_control()), "{out}");
        assert_eq!(
            out,
            "ok\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}\\u{a}next\\u{202e}txt\\u{9b}31m\\u{7f}"
        );
        assert!(matches!(escape("plain ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_are_truncated_after_escaping() {
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("abc", 4), "abc");
        assert_eq!(cell("\x1b\x1b", 6), "\\u{1b…");
    }

    #[test]
    fn times_and_ages() {
        assert_eq!(rfc3339(0), None);
        assert_eq!(rfc3339(1_714_557_600_000).unwrap(), "2024-05-01T10:00:00Z");
        assert_eq!(
            rfc3339(1_714_557_600_250).unwrap(),
            "2024-05-01T10:00:00.25Z"
        );
        assert_eq!(age(100_000, 58_000), "42s");
        assert_eq!(age(10_000_000, 10_000_000 - 300_000), "5m");
        assert_eq!(age(1_000_000_000, 1_000_000_000 - 3 * 86_400_000), "3d");
        assert_eq!(age(5, 0), "-");
        assert_eq!(duration_ms(30_000), "30s");
        assert_eq!(duration_ms(1_500), "1.5s");
    }
}
