//! Times for people: local wall-clock times ("14:03:12") and spans relative to now ("3m ago",
//! "in 57m").

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

static LOCAL: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local UTC offset. Call first thing in `main`: `time` can only read it soundly
/// while the process has a single thread; later calls, and failures, leave UTC.
pub fn init_local_offset() {
    let _ = LOCAL.set(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

fn local() -> UtcOffset {
    LOCAL.get().copied().unwrap_or(UtcOffset::UTC)
}

/// A protobuf timestamp as a `SystemTime`; unset or out of range: `None`.
pub fn from_pb(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let ts = ts?;
    if ts.seconds == 0 && ts.nanos == 0 {
        return None;
    }
    SystemTime::try_from(*ts).ok()
}

/// A protobuf duration as a `Duration`; unset or negative: `None`.
pub fn duration_from_pb(d: Option<&prost_types::Duration>) -> Option<Duration> {
    Duration::try_from(*d?).ok()
}

/// A duration in its two largest units: `45s`, `3m`, `1h5m`, `2d3h`.
pub fn span(d: Duration) -> String {
    // Round to the nearest second: a 10-minute grant read a few ms later is still "10m".
    let s = (d.as_millis() + 500) / 1000;
    let (m, h, days) = (s / 60, s / 3600, s / 86_400);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m"),
        3600..86_400 if m % 60 == 0 => format!("{h}h"),
        3600..86_400 => format!("{h}h{}m", m % 60),
        _ if h % 24 == 0 => format!("{days}d"),
        _ => format!("{days}d{}h", h % 24),
    }
}

/// `t` relative to `now`: `3m ago`, `in 57m`, `now`.
pub fn relative(t: SystemTime, now: SystemTime) -> String {
    match t.duration_since(now) {
        Ok(ahead) if ahead >= Duration::from_millis(500) => format!("in {}", span(ahead)),
        Ok(_) => "now".into(),
        Err(e) if e.duration() < Duration::from_millis(500) => "now".into(),
        Err(e) => format!("{} ago", span(e.duration())),
    }
}

/// Local time of day (`14:03:12`), with the date when it is not today's.
pub fn clock(t: SystemTime, now: SystemTime) -> String {
    clock_in(t, now, local())
}

fn clock_in(t: SystemTime, now: SystemTime, offset: UtcOffset) -> String {
    let t = OffsetDateTime::from(t).to_offset(offset);
    let today = OffsetDateTime::from(now).to_offset(offset).date();
    let format = if t.date() == today {
        format_description!("[hour]:[minute]:[second]")
    } else {
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")
    };
    t.format(format).unwrap_or_else(|_| "?".into())
}

/// `14:03:12 (in 57m)`.
pub fn clock_and_relative(t: SystemTime, now: SystemTime) -> String {
    format!("{} ({})", clock(t, now), relative(t, now))
}

/// RFC 3339 in UTC with milliseconds (machine-readable output).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn spans() {
        let s = Duration::from_secs;
        assert_eq!(span(s(0)), "0s");
        assert_eq!(span(s(45)), "45s");
        assert_eq!(span(Duration::from_millis(599_700)), "10m");
        assert_eq!(span(s(3 * 60 + 59)), "3m");
        assert_eq!(span(s(3600)), "1h");
        assert_eq!(span(s(3900)), "1h5m");
        assert_eq!(span(s(2 * 86_400)), "2d");
        assert_eq!(span(s(2 * 86_400 + 3 * 3600 + 7)), "2d3h");
    }

    #[test]
    fn relative_times() {
        let now = at(1_000_000);
        assert_eq!(relative(at(1_000_000 - 180), now), "3m ago");
        assert_eq!(relative(at(1_000_000 + 57 * 60), now), "in 57m");
        assert_eq!(relative(now, now), "now");
    }

    #[test]
    fn clocks() {
        // 2026-11-23T14:03:12Z
        let t = at(1_795_442_592);
        assert_eq!(clock_in(t, t, UtcOffset::UTC), "14:03:12");
        let plus2 = UtcOffset::from_hms(2, 0, 0).expect("offset");
        assert_eq!(clock_in(t, t, plus2), "16:03:12");
        let next_day = at(1_795_442_592 + 86_400);
        assert_eq!(clock_in(t, next_day, UtcOffset::UTC), "2026-11-23 14:03:12");
    }

    #[test]
    fn protobuf_times() {
        let ts = prost_types::Timestamp {
            seconds: 1_795_442_592,
            nanos: 0,
        };
        assert_eq!(from_pb(Some(&ts)), Some(at(1_795_442_592)));
        assert_eq!(from_pb(Some(&prost_types::Timestamp::default())), None);
        assert_eq!(from_pb(None), None);
        let bad = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert_eq!(duration_from_pb(Some(&bad)), None);
    }
}
