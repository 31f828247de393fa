//! The host's time zone, for the zone-less local times that nginx, HAProxy
//! and Apache write. The zone is read from `<etc root>/localtime` (a TZif
//! file, as on every systemd host), else from `TZ`, else UTC, and each civil
//! time is converted with the real zone rules, DST included: a time that
//! falls in the hour a DST change skips or repeats resolves the way
//! `jiff`'s "compatible" strategy (and RFC 5545) does.

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// The zone log times are read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostZone {
    tz: TimeZone,
}

impl Default for HostZone {
    fn default() -> Self {
        Self::utc()
    }
}

impl HostZone {
    /// UTC.
    pub fn utc() -> Self {
        Self { tz: TimeZone::UTC }
    }

    /// The zone of a TZif file (`/usr/share/zoneinfo/Europe/Berlin`);
    /// `None` when it cannot be read or parsed.
    pub fn from_tzif(path: &Path) -> Option<Self> {
        let bytes = std::fs::read(path).ok()?;
        let name = path.to_string_lossy();
        let tz = TimeZone::tzif(&name, &bytes).ok()?;
        Some(Self { tz })
    }

    /// A `TZ` value: an IANA name (`Europe/Berlin`, `:Asia/Kolkata`) or a
    /// POSIX rule (`CET-1CEST,M3.5.0,M10.5.0/3`).
    pub fn from_tz_var(value: &str) -> Option<Self> {
        let value = value.trim().trim_start_matches(':');
        if value.is_empty() {
            return None;
        }
        let tz = TimeZone::get(value)
            .or_else(|_| TimeZone::posix(value))
            .ok()?;
        Some(Self { tz })
    }

    /// The host's zone: `<etc>/localtime`, else `TZ`, else UTC.
    pub fn of_host(etc: &Path) -> Self {
        Self::from_tzif(&etc.join("localtime"))
            .or_else(|| std::env::var("TZ").ok().and_then(|v| Self::from_tz_var(&v)))
            .unwrap_or_default()
    }

    /// Converts a civil time that a parser read as if it were UTC (epoch
    /// ms of the wall-clock reading) into the real instant in this zone.
    pub fn civil_to_utc_ms(&self, civil_as_utc_ms: i64) -> i64 {
        let convert = || -> Option<i64> {
            let civil: DateTime = Timestamp::from_millisecond(civil_as_utc_ms)
                .ok()?
                .to_zoned(TimeZone::UTC)
                .datetime();
            let at = self.tz.to_ambiguous_timestamp(civil).compatible().ok()?;
            Some(at.as_millisecond())
        };
        convert().unwrap_or(civil_as_utc_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gw502_proxy::line::civil_ms;

    fn zone(name: &str) -> HostZone {
        HostZone::from_tzif(&Path::new("/usr/share/zoneinfo").join(name))
            .unwrap_or_else(|| panic!("no zone file {name}"))
    }

    fn utc(y: i64, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        civil_ms(y, mo, d, h, mi, 0, 0).unwrap()
    }

    #[test]
    fn berlin_across_the_spring_and_autumn_changes() {
        let z = zone("Europe/Berlin");
        // 2026-03-29 02:00 CET becomes 03:00 CEST.
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 3, 29, 1, 30)),
            utc(2026, 3, 29, 0, 30)
        );
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 3, 29, 3, 30)),
            utc(2026, 3, 29, 1, 30)
        );
        // The skipped 02:30 is read as the instant after the gap.
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 3, 29, 2, 30)),
            utc(2026, 3, 29, 1, 30)
        );
        // 2026-10-25 03:00 CEST becomes 02:00 CET; repeated 02:30 is the first.
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 10, 25, 2, 30)),
            utc(2026, 10, 25, 0, 30)
        );
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 10, 25, 4, 0)),
            utc(2026, 10, 25, 3, 0)
        );
    }

    #[test]
    fn new_york_and_kolkata() {
        let ny = zone("America/New_York");
        assert_eq!(
            ny.civil_to_utc_ms(utc(2026, 1, 15, 12, 0)),
            utc(2026, 1, 15, 17, 0)
        );
        assert_eq!(
            ny.civil_to_utc_ms(utc(2026, 7, 15, 12, 0)),
            utc(2026, 7, 15, 16, 0)
        );
        let kol = zone("Asia/Kolkata");
        assert_eq!(
            kol.civil_to_utc_ms(utc(2026, 7, 15, 12, 0)),
            utc(2026, 7, 15, 6, 30)
        );
    }

    #[test]
    fn host_zone_comes_from_the_etc_root_then_tz() {
        let etc = tempfile::tempdir().unwrap();
        let berlin = std::fs::read("/usr/share/zoneinfo/Europe/Berlin").unwrap();
        std::fs::write(etc.path().join("localtime"), berlin).unwrap();
        let z = HostZone::of_host(etc.path());
        assert_eq!(
            z.civil_to_utc_ms(utc(2026, 7, 1, 12, 0)),
            utc(2026, 7, 1, 10, 0)
        );
        let empty = tempfile::tempdir().unwrap();
        let kol = HostZone::from_tz_var(":Asia/Kolkata").unwrap();
        assert_eq!(
            kol.civil_to_utc_ms(utc(2026, 1, 1, 5, 30)),
            utc(2026, 1, 1, 0, 0)
        );
        let posix = HostZone::from_tz_var("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(
            posix.civil_to_utc_ms(utc(2026, 7, 15, 12, 0)),
            utc(2026, 7, 15, 16, 0)
        );
        assert!(HostZone::from_tzif(&empty.path().join("localtime")).is_none());
        assert_eq!(HostZone::utc().civil_to_utc_ms(5), 5);
    }
}
