//! Parsing of `--since`: a relative age (`30d`, `12h`, `15m`, `45s`) or an
//! RFC3339 time, into epoch milliseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Converts `--since` into epoch milliseconds, relative to `now_ms`.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "invalid --since \"{}\": use 30d, 12h, 15m, 45s or an RFC3339 time like 2024-05-01T10:00:00Z",
            text.escape_debug()
        )
    };
    if let Some(unit) = text.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let digits = &text[..text.len() - 1];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = digits.parse().map_err(|_| invalid())?;
            let unit_ms: i64 = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 7 * 86_400_000,
                _ => return Err(invalid()),
            };
            let back = n.checked_mul(unit_ms).ok_or_else(invalid)?;
            return Ok(now_ms.saturating_sub(back).max(0));
        }
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z

    #[test]
    fn relative_ages() {
        assert_eq!(parse_since("30d", NOW), Ok(NOW - 30 * 86_400_000));
        assert_eq!(parse_since("12h", NOW), Ok(NOW - 12 * 3_600_000));
        assert_eq!(parse_since("15m", NOW), Ok(NOW - 15 * 60_000));
        assert_eq!(parse_since("45s", NOW), Ok(NOW - 45_000));
        assert_eq!(parse_since("0m", NOW), Ok(NOW));
    }

    #[test]
    fn absolute_times() {
        assert_eq!(
            parse_since("2024-05-01T09:00:00Z", NOW),
            Ok(NOW - 3_600_000)
        );
        assert_eq!(
            parse_since("2024-05-01T11:00:00+02:00", NOW),
            Ok(NOW - 3_600_000)
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "d",
            "12",
            "12x",
            "-5m",
            "1.5h",
            "yesterday",
            "99999999999999999999d",
            "2024-05-01",
        ] {
            let err = parse_since(bad, NOW).unwrap_err();
            assert!(err.starts_with("invalid --since"), "{bad}: {err}");
        }
    }
}
