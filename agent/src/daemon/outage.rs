//! The time no daemon ran. The pinned programs keep enforcing while no daemon runs (approve
//! rules keep refusing, nothing is granted), but nobody reads the events, answers the agents
//! or talks to the control plane. Each daemon writes a heartbeat into its state directory
//! every [`INTERVAL`] and when it stops; the next one reads it at start and reports the gap:
//! in its log, in `status`, and to the control plane, which audits it.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

/// How often the heartbeat is written: an outage is known to within this.
pub const INTERVAL: Duration = Duration::from_secs(5);

const FILE: &str = "heartbeat.json";

/// What a daemon last said of itself.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    pid: u32,
    /// Milliseconds since the Unix epoch.
    alive_at_ms: u64,
    /// It stopped on SIGTERM or SIGINT (rather than dying).
    stopped: bool,
    /// The kernel's count of events lost (ring buffer full) at that moment.
    events_lost: u64,
}

/// The gap before this daemon, as `status` and the control plane show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    /// Pid of the previous daemon.
    pub pid: u32,
    /// When it was last known alive (its last heartbeat), RFC 3339.
    pub since: String,
    /// Seconds from then to this daemon's start (at most [`INTERVAL`] more than the truth
    /// when it died).
    pub seconds: u64,
    /// It stopped cleanly (SIGTERM or SIGINT) rather than dying (SIGKILL, OOM, a crash).
    pub clean: bool,
    /// Events the kernel counted as lost meanwhile (the ring buffer filled while nobody read
    /// it); the events that fit are read by this daemon.
    pub events_lost: u64,
}

/// Writes this daemon's heartbeat.
pub struct Writer {
    path: PathBuf,
}

impl Writer {
    pub fn new(state_dir: &Path) -> Self {
        Writer {
            path: state_dir.join(FILE),
        }
    }

    /// Records that this daemon is alive now (`stopped`: and stopping). A failure is logged:
    /// it costs the next daemon its report, never enforcement.
    pub fn beat(&self, stopped: bool, events_lost: u64) {
        let beat = Heartbeat {
            pid: std::process::id(),
            alive_at_ms: millis(SystemTime::now()),
            stopped,
            events_lost,
        };
        let written = serde_json::to_vec(&beat)
            .map_err(std::io::Error::other)
            .and_then(|json| crate::atomic_file::write(&self.path, &json));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the heartbeat");
        }
    }
}

/// The gap since the previous daemon of `state_dir`, given the kernel's lost-event count now;
/// None for the first daemon (or an unreadable heartbeat, which is logged).
pub fn previous(state_dir: &Path, events_lost_now: u64) -> Option<Outage> {
    let path = state_dir.join(FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the previous daemon's heartbeat");
            return None;
        }
    };
    let beat: Heartbeat = match serde_json::from_slice(&text) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the previous daemon's heartbeat is not valid");
            return None;
        }
    };
    Some(gap(&beat, SystemTime::now(), events_lost_now))
}

fn gap(beat: &Heartbeat, now: SystemTime, events_lost_now: u64) -> Outage {
    let since = SystemTime::UNIX_EPOCH + Duration::from_millis(beat.alive_at_ms);
    Outage {
        pid: beat.pid,
        since: crate::uplink::convert::rfc3339(since),
        seconds: now.duration_since(since).unwrap_or_default().as_secs(),
        clean: beat.stopped,
        // Counters start again from zero when the maps were not reused (after `unload`).
        events_lost: events_lost_now.saturating_sub(beat.events_lost),
    }
}

/// Says it in the log: a warning unless the previous daemon stopped cleanly, briefly, with
/// nothing lost.
pub fn log(o: &Outage) {
    if o.clean && o.events_lost == 0 && o.seconds < 60 {
        tracing::info!(previous_pid = o.pid, since = %o.since, seconds = o.seconds, "no daemon ran for {} s (the previous one stopped)", o.seconds);
    } else {
        tracing::warn!(
            previous_pid = o.pid,
            since = %o.since,
            seconds = o.seconds,
            clean = o.clean,
            events_lost = o.events_lost,
            "no daemon ran for {} s (the previous one {}); the pinned programs kept enforcing, \
             the kernel counted {} events lost meanwhile",
            o.seconds,
            if o.clean { "stopped" } else { "died" },
            o.events_lost
        );
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_measured_from_the_last_heartbeat() {
        let dir = std::env::temp_dir().join(format!("cs-outage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        assert_eq!(
            previous(&dir, 0),
            None,
            "the first daemon has no predecessor"
        );
        Writer::new(&dir).beat(false, 3);
        let o = previous(&dir, 10).expect("a heartbeat");
        assert_eq!(
            (o.pid, o.clean, o.events_lost),
            (std::process::id(), false, 7)
        );
        assert!(o.seconds < 5, "{o:?}");

        let beat = Heartbeat {
            pid: 42,
            alive_at_ms: 1_000_000,
            stopped: true,
            events_lost: 5,
        };
        let later = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + 90_500);
        let o = gap(&beat, later, 2);
        assert_eq!((o.seconds, o.clean, o.events_lost), (90, true, 0));
        assert_eq!(o.since, "1970-01-01T00:16:40.000Z");

        fs::write(dir.join(FILE), "{not json").expect("write");
        assert_eq!(previous(&dir, 0), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
