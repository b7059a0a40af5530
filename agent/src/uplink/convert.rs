//! Event log lines → `pb::EventRecord`, and the time conversions between the two worlds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use countersign_api::{pb, verdict::Judged};

use crate::{events::Record, session::SessionKey};

/// Flag of a record sent for a log line that is not a valid event (so that the sequence has
/// no hole: the server acknowledges contiguous sequences only).
pub const UNREADABLE_FLAG: &str = countersign_api::UNREADABLE_LOG_LINE;

/// Protobuf time of `t`.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// `t` as a SystemTime (None before the epoch or out of range).
pub fn system_time(t: &prost_types::Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// A protobuf duration (negative ones are zero).
pub fn duration(d: &prost_types::Duration) -> Duration {
    let secs = u64::try_from(d.seconds).unwrap_or(0);
    let nanos = u32::try_from(d.nanos).unwrap_or(0);
    Duration::new(secs, 0).saturating_add(Duration::from_nanos(u64::from(nanos)))
}

/// RFC 3339 with milliseconds, as the event log writes times.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The operation of a record; `launching_user` comes from the session registry.
pub fn operation(r: &Record, launching_user: Option<String>) -> pb::Operation {
    pb::Operation {
        agent_group: r.agent.clone().unwrap_or_default(),
        session: r.session.clone().unwrap_or_default(),
        cgroup: r.cgroup.clone().unwrap_or_default(),
        cgroup_id: r.cgroup_id,
        launching_user: launching_user.unwrap_or_default(),
        uid: r.uid,
        gid: r.gid,
        pid: r.pid,
        tgid: r.tgid,
        comm: r.comm.clone(),
        binary: r.binary.clone().unwrap_or_default(),
        device: r.dev.clone().unwrap_or_default(),
        inode: r.ino.unwrap_or(0),
        write_stamp: r.write_stamp.unwrap_or(0),
        argv: r.argv.clone(),
        argv_truncated: r.argv_truncated,
        parents: r
            .parents
            .iter()
            .map(|p| pb::ParentProcess {
                pid: p.pid,
                comm: p.comm.clone(),
                exe: p.exe.clone().unwrap_or_default(),
            })
            .collect(),
        destination: r.destination.as_ref().map(|d| pb::Destination {
            address: d.address.clone(),
            port: u32::from(d.port),
            protocol: d.protocol.clone(),
            family: d.family.clone(),
        }),
        fingerprint: r.fingerprint.clone(),
        rule_number: r.rule_number,
        tamper: r.tamper.as_ref().map(|t| pb::Tamper {
            what: t.what.to_string(),
            target: t.target.clone(),
        }),
    }
}

/// The session a record belongs to (for the launching user), when it is in an agent group.
pub fn session_key(r: &Record) -> Option<SessionKey> {
    Some(SessionKey::new(
        r.agent.clone()?,
        r.session.clone().unwrap_or_default(),
    ))
}

/// The upload form of line `seq` of the log. `launcher` names a session's launching user.
pub fn event_record(
    seq: u64,
    line: &[u8],
    launcher: impl Fn(&SessionKey) -> Option<String>,
) -> pb::EventRecord {
    let r: Record = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(sequence = seq, error = %e, "event log line is not an event; uploading a placeholder");
            return pb::EventRecord {
                sequence: seq,
                time: Some(timestamp(SystemTime::now())),
                flags: vec![UNREADABLE_FLAG.to_owned()],
                ..Default::default()
            };
        }
    };
    let time = humantime::parse_rfc3339_weak(&r.time).unwrap_or_else(|_| SystemTime::now());
    let user = session_key(&r).and_then(|k| launcher(&k));
    let mut ev = pb::EventRecord {
        sequence: seq,
        time: Some(timestamp(time)),
        kind: pb::OperationKind::from(r.kind) as i32,
        operation: Some(operation(&r, user)),
        rule: r.rule.clone().unwrap_or_default(),
        grant_id: r.grant_id.map(|g| format!("{g:016x}")).unwrap_or_default(),
        flags: r.flags.clone(),
        ..Default::default()
    };
    Judged {
        action: r.action,
        outcome: r.outcome,
        mode: r.mode,
    }
    .stamp(&mut ev);
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as the event log holds it (the contract's example, with a grant).
    const LINE: &str = r#"{"time":"2026-11-23T14:00:00.123Z","kind":"exec","action":"approve","outcome":"granted","mode":"lsm","rule":"kubectl-mutations","agent":"coding-agents","session":"s-1","cgroup":"/countersign/coding-agents/s-1","cgroup_id":1234,"pid":4242,"tgid":4242,"ppid":4200,"uid":1000,"gid":1000,"comm":"bash","binary":"/usr/bin/kubectl","dev":"8:1","ino":123456,"argv":["kubectl","delete","pod","x"],"argv_truncated":false,"fingerprint":"9a3f00000000abcd","grant_id":171,"destination":null,"parents":[{"pid":4200,"comm":"bash","exe":"/usr/bin/bash"},{"pid":1,"comm":"init","exe":null}],"flags":["interpreted"],"generation":0}"#;

    #[test]
    fn records_carry_everything() {
        let e = event_record(7, LINE.as_bytes(), |k| {
            (k == &SessionKey::new("coding-agents", "s-1")).then(|| "alice".to_owned())
        });
        assert_eq!(e.sequence, 7);
        assert_eq!(e.kind, pb::OperationKind::Exec as i32);
        assert_eq!(
            (e.rule_action(), e.result(), e.enforcement()),
            (
                pb::Action::Approve,
                pb::Outcome::Granted,
                pb::EnforcementMode::Lsm
            )
        );
        #[allow(
            deprecated,
            reason = "servers that predate the typed fields read these"
        )]
        let strings = (e.action.as_str(), e.outcome.as_str(), e.mode.as_str());
        assert_eq!(strings, ("approve", "granted", "lsm"));
        assert_eq!(e.rule, "kubectl-mutations");
        assert_eq!(e.grant_id, "00000000000000ab");
        assert_eq!(e.flags, ["interpreted"]);
        let t = e.time.expect("time");
        assert_eq!((t.seconds, t.nanos), (1_795_442_400, 123_000_000));
        let op = e.operation.expect("operation");
        assert_eq!(op.agent_group, "coding-agents");
        assert_eq!(op.session, "s-1");
        assert_eq!(op.cgroup, "/countersign/coding-agents/s-1");
        assert_eq!(op.launching_user, "alice");
        assert_eq!((op.uid, op.pid, op.cgroup_id), (1000, 4242, 1234));
        assert_eq!((op.device.as_str(), op.inode), ("8:1", 123_456));
        assert_eq!(op.argv, ["kubectl", "delete", "pod", "x"]);
        assert_eq!(op.fingerprint, "9a3f00000000abcd");
        assert_eq!(op.parents.len(), 2);
        assert_eq!(op.parents[1].exe, "");
        assert!(op.destination.is_none());
    }

    /// Event logs written before the verdict became typed read back, and are written again,
    /// byte for byte.
    #[test]
    fn old_log_lines_are_written_byte_for_byte() {
        let r: Record = serde_json::from_str(LINE).expect("an event");
        // The line also predates `rule_number`, which is written (as 0) since.
        let now = LINE.replace(
            r#""rule":"kubectl-mutations","#,
            r#""rule":"kubectl-mutations","rule_number":0,"#,
        );
        assert_eq!(serde_json::to_string(&r).expect("json"), now);
        let unknown = LINE.replace(r#""outcome":"granted""#, r#""outcome":"unknown""#);
        let e = event_record(3, unknown.as_bytes(), |_| None);
        assert_eq!(e.flags, [UNREADABLE_FLAG.to_owned()]);
    }

    #[test]
    fn connects_and_garbage() {
        let line = r#"{"time":"2026-11-23T15:02:38.904Z","kind":"connect","action":"deny","outcome":"refused","mode":"fallback","rule":null,"agent":"coding-agents","session":null,"cgroup":null,"cgroup_id":6504,"pid":7566,"tgid":7566,"ppid":null,"uid":0,"gid":0,"comm":"bash","binary":null,"dev":null,"ino":null,"argv":[],"argv_truncated":false,"fingerprint":"c47b4f541399e611","grant_id":null,"destination":{"address":"169.254.169.254","port":80,"protocol":"tcp","family":"ipv4"},"parents":[],"flags":[],"generation":0}"#;
        let e = event_record(1, line.as_bytes(), |_| None);
        assert_eq!(e.kind, pb::OperationKind::Connect as i32);
        assert_eq!((e.rule.as_str(), e.grant_id.as_str()), ("", ""));
        let op = e.operation.expect("operation");
        assert_eq!((op.session.as_str(), op.launching_user.as_str()), ("", ""));
        let d = op.destination.expect("destination");
        assert_eq!(
            (
                d.address.as_str(),
                d.port,
                d.protocol.as_str(),
                d.family.as_str()
            ),
            ("169.254.169.254", 80, "tcp", "ipv4")
        );
        let bad = event_record(2, b"{not json", |_| None);
        assert_eq!(
            (bad.sequence, bad.flags.as_slice()),
            (2, [UNREADABLE_FLAG.to_owned()].as_slice())
        );
    }

    #[test]
    fn times_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(system_time(&timestamp(t)), Some(t));
        assert_eq!(
            system_time(&prost_types::Timestamp {
                seconds: -1,
                nanos: 0
            }),
            None
        );
        let d = prost_types::Duration {
            seconds: 600,
            nanos: 5,
        };
        assert_eq!(duration(&d), Duration::new(600, 5));
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
