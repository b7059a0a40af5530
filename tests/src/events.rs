//! The daemon's event log (`STATE_DIR/events.jsonl`, one JSON object per line): parsing it and
//! waiting for the event of an operation.

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// Longest wait for an event to reach the log (the VMs run under software emulation).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// One line of the event log. Fields the tests do not look at are not listed; a line that
/// lacks a listed field without a default is a contract violation and fails the test.
#[derive(Clone, Debug, Deserialize)]
pub struct Event {
    /// `exec`, `connect`, `argv_mismatch` or `tamper`.
    pub kind: String,
    /// `allow`, `audit`, `deny` or `approve`.
    pub action: String,
    /// `allowed`, `refused`, `killed`, `would_refuse` or `granted`.
    pub outcome: String,
    pub mode: String,
    /// Rule id, `None` when the group's default applied.
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub cgroup_id: Option<u64>,
    pub pid: u32,
    pub tgid: u32,
    /// Real uid of the process.
    pub uid: u32,
    #[serde(default)]
    pub binary: Option<String>,
    /// `major:minor` of the executed file.
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub ino: Option<u64>,
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub grant_id: Option<serde_json::Value>,
    #[serde(default)]
    pub destination: Option<Destination>,
    /// Tamper events: what was tried, and at what.
    #[serde(default)]
    pub tamper: Option<Tamper>,
    /// Exec: a watched process wrote the executed file (or it has no name).
    #[serde(default)]
    pub agent_written: bool,
    /// Exec: the guarded binary the executed file is a copy of.
    #[serde(default)]
    pub copy_of: Option<String>,
    /// Exec of an agent-written file: its write stamp, part of what a grant binds.
    #[serde(default)]
    pub write_stamp: Option<u64>,
    /// The line as the daemon wrote it, for messages.
    #[serde(skip)]
    pub line: String,
}

/// Where a judged connect was going.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Destination {
    pub address: String,
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
}

/// What a tamper event says was tried.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Tamper {
    /// `cgroup_move`, `bpf`, `signal` … (`agent_common::tamper`).
    pub what: String,
    pub target: String,
}

impl Event {
    /// argv, empty when the event has none.
    pub fn argv(&self) -> &[String] {
        self.argv.as_deref().unwrap_or_default()
    }
}

/// The event log of one daemon state directory.
#[derive(Clone, Debug)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every complete line, raw (a line still being written is left out).
    pub fn lines(&self) -> Vec<String> {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Every event so far. A complete line that is not a valid event fails the test.
    pub fn read(&self) -> Vec<Event> {
        self.lines()
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let mut event: Event = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!(
                        "{}:{}: not a valid event ({e}): {line}",
                        self.path.display(),
                        i + 1
                    )
                });
                event.line = line;
                event
            })
            .collect()
    }

    /// The events of process `pid` (the process that exec'd or connected).
    pub fn of_pid(&self, pid: u32) -> Vec<Event> {
        self.read().into_iter().filter(|e| e.tgid == pid).collect()
    }

    /// Waits for the first event matching `pred`; panics after [`EVENT_TIMEOUT`] with `what`
    /// and the end of the log.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(event) = self.read().into_iter().find(&pred) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no event {what} within {EVENT_TIMEOUT:?}; end of {}:\n{}",
                self.path.display(),
                self.tail(20).join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the first event of `kind` by process `pid`.
    pub fn wait_for_pid(&self, kind: &str, pid: u32) -> Event {
        self.wait_for(&format!("of kind {kind} by pid {pid}"), |e| {
            e.kind == kind && e.tgid == pid
        })
    }

    /// Panics if an event by `pid` is in the log. Call it once the event of a *later*
    /// operation is in: the log keeps the order of the kernel's ring buffer, so an event of
    /// `pid` would have come first.
    pub fn assert_none_for_pid(&self, pid: u32, why: &str) {
        let found = self.of_pid(pid);
        assert!(
            found.is_empty(),
            "{why}, yet pid {pid} has events:\n{}",
            lines_of(&found)
        );
    }

    /// The last `n` raw lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// The raw lines of `events`, one per line.
pub fn lines_of(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| e.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example line of the contract parses.
    const CONTRACT_LINE: &str = r#"{"time":"2026-11-23T14:00:00.123Z","kind":"exec","action":"approve","outcome":"refused","mode":"lsm","rule":"kubectl-mutations","agent":"coding-agents","session":"s-123-1700000000","cgroup":"/countersign/coding-agents/s-123-1700000000","cgroup_id":1234,"pid":4242,"tgid":4242,"ppid":4200,"uid":0,"gid":0,"comm":"bash","binary":"/usr/bin/kubectl","dev":"8:1","ino":123456,"argv":["kubectl","delete","pod","x"],"argv_truncated":false,"fingerprint":"9a3f00000000abcd","grant_id":null,"destination":null,"parents":[{"pid":4200,"comm":"bash","exe":"/usr/bin/bash"}],"flags":[]}"#;

    #[test]
    fn parses_complete_lines_only() {
        let dir = std::env::temp_dir().join(format!("cs-events-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.jsonl");
        fs::write(&path, format!("{CONTRACT_LINE}\n{{\"kind\":\"exe")).expect("write");
        let events = EventLog::new(&path).read();
        fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            (e.kind.as_str(), e.outcome.as_str(), e.tgid),
            ("exec", "refused", 4242)
        );
        assert_eq!(e.argv(), ["kubectl", "delete", "pod", "x"]);
        assert_eq!(e.rule.as_deref(), Some("kubectl-mutations"));
        assert!(e.grant_id.is_none() && e.destination.is_none());
    }

    #[test]
    fn parses_a_connect_destination() {
        let line = r#"{"kind":"connect","action":"deny","outcome":"refused","mode":"fallback","pid":7,"tgid":7,"argv":[],"destination":{"address":"::ffff:10.0.0.1","port":5432,"protocol":"tcp","family":"ipv6"}}"#;
        let e: Event = serde_json::from_str(line).expect("parse");
        let d = e.destination.expect("destination");
        assert_eq!(
            (d.address.as_str(), d.port, d.family.as_str()),
            ("::ffff:10.0.0.1", 5432, "ipv6")
        );
    }
}
