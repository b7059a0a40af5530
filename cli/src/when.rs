//! Parsing what people type for durations (`10m`, `1h30m`) and points in time (RFC 3339, or
//! a duration meaning "that long ago").

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A positive duration: `90s`, `10m`, `1h30m`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like 10m or 1h30m: {e}"))?;
    if d.is_zero() {
        return Err(format!("{s:?}: the duration must be more than zero"));
    }
    Ok(d)
}

/// An RFC 3339 time as the daemon writes it (`2026-11-23T14:00:08.750Z`); None otherwise.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .ok()
        .map(Into::into)
}

/// A point in time: RFC 3339 (`2026-11-23T14:00:00Z`, `2026-11-23T15:00:00+01:00`), `now`, or a
/// duration meaning that long before `now` (`1h` = an hour ago).
pub fn parse_time(s: &str, now: SystemTime) -> Result<SystemTime, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.into());
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        return now
            .checked_sub(ago)
            .filter(|t| *t >= SystemTime::UNIX_EPOCH)
            .ok_or_else(|| format!("{s:?} is too far back"));
    }
    Err(format!(
        "{s:?} is neither an RFC 3339 time (2026-11-23T14:00:00Z) nor a duration ago (1h, 2d)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::from_secs(172_800)));
        for bad in ["", "0s", "ten minutes", "-5m", "10", "1h-"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times() {
        let now = at(1_795_442_592);
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("1h", now), Ok(at(1_795_442_592 - 3600)));
        assert_eq!(
            parse_time("2026-11-23T14:00:00Z", now),
            Ok(at(1_795_442_400))
        );
        assert_eq!(
            parse_time("2026-11-23T15:00:00.500+01:00", now),
            Ok(at(1_795_442_400) + Duration::from_millis(500))
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "1h ago",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad:?}");
        }
        assert!(parse_time("100000000000d", now).is_err());
        assert_eq!(
            parse_rfc3339("2026-11-23T14:00:00.000Z"),
            Some(at(1_795_442_400))
        );
        assert_eq!(parse_rfc3339("soon"), None);
    }
}
