//! Record times: RFC 3339, UTC, millisecond precision, one spelling only.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, truncated to milliseconds, written `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Parsing accepts only that exact spelling: the canonical form hashes the text, so two
/// spellings of one instant would be two different records.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// `t` truncated to milliseconds (times before 1970 become 1970).
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp(UNIX_EPOCH + Duration::new(since.as_secs(), since.subsec_millis() * 1_000_000))
    }

    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// As a `SystemTime`.
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Milliseconds since the Unix epoch (OCSF `timestamp_t`).
    pub fn unix_millis(self) -> u64 {
        let ms = self
            .0
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// Parses the one accepted spelling.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let t = humantime::parse_rfc3339(s).ok()?;
        let ts = Timestamp::from_system_time(t);
        (ts.to_string() == s).then_some(ts)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| de::Error::custom("expected RFC 3339 UTC time YYYY-MM-DDTHH:MM:SS.mmmZ"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling() {
        let t = Timestamp::parse("2026-11-23T14:00:00.123Z").expect("valid");
        assert_eq!(t.to_string(), "2026-11-23T14:00:00.123Z");
        assert_eq!(t.unix_millis(), 1_795_442_400_123);
        for bad in [
            "2026-11-23T14:00:00Z",
            "2026-11-23T14:00:00.123456Z",
            "2026-11-23T14:00:00.123+00:00",
            "2026-11-23 14:00:00.123Z",
            "yesterday",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }
}
