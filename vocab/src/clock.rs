//! Epoch milliseconds: the one time unit of reports, evidence and incidents,
//! and its RFC 3339 spelling in the JSON contract.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch, now; 0 if the clock is before 1970.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2024-05-01T10:00:00Z` for epoch milliseconds; `None` for 0 (unset) and
/// out-of-range values.
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_keeps_milliseconds_and_unset_is_none() {
        assert_eq!(rfc3339(0), None);
        assert_eq!(rfc3339(-5), None);
        assert_eq!(
            rfc3339(1_714_557_600_250).as_deref(),
            Some("2024-05-01T10:00:00.25Z")
        );
        assert!(now_ms() > 1_700_000_000_000);
    }
}
