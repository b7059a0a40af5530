//! One line of the event log, as operators, auditors and tests read it.

use agent_common::{event::EventKind, tamper::Tamper, Action, Mode, Outcome};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `exec`, `connect`, `argv_mismatch` or `tamper`.
    pub kind: EventKind,
    /// What the rule or default said: `allow`, `audit`, `deny`, `approve`.
    pub action: Action,
    /// What happened: `allowed`, `refused`, `killed`, `would_refuse`, `granted`.
    pub outcome: Outcome,
    /// `lsm` or `fallback`.
    pub mode: Mode,
    /// Rule id, or None when the agent group's default applied.
    pub rule: Option<String>,
    /// The rule's number in its policy generation (index + 1; 0 for the group default), part
    /// of what a grant binds. Absent from logs written before exact grant binding.
    #[serde(default)]
    pub rule_number: u32,
    /// Agent group name.
    pub agent: Option<String>,
    /// Session (the child cgroup of the agent group), when the process is in one.
    pub session: Option<String>,
    /// cgroup path inside the cgroup v2 hierarchy.
    pub cgroup: Option<String>,
    pub cgroup_id: u64,
    pub pid: u32,
    pub tgid: u32,
    pub ppid: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    /// Executed file as the caller named it (exec only).
    pub binary: Option<String>,
    /// `major:minor` of the executed file (exec only).
    pub dev: Option<String>,
    pub ino: Option<u64>,
    pub argv: Vec<String>,
    pub argv_truncated: bool,
    /// The operation id: 32 hex digits (16 in logs written before exact grant binding).
    pub fingerprint: String,
    pub grant_id: Option<u64>,
    pub destination: Option<Destination>,
    /// Parent chain, nearest first (best effort: processes may be gone).
    pub parents: Vec<Parent>,
    /// Extra facts: `argv_from_image`, `interpreted`, `sendmsg`, `failed_closed`,
    /// `agent_written`, `copy`.
    pub flags: Vec<String>,
    /// Exec: the file was written by a watched process (or has no name: a memfd, an
    /// `O_TMPFILE`). Absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub agent_written: bool,
    /// Exec: the guarded binary (a path its rule names) this file is a copy of, recognised by
    /// content. Absent when not a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
    /// Exec of a file a watched process wrote: the kernel's write stamp on it (CLOCK_MONOTONIC
    /// nanoseconds of the last open for writing), part of what a grant binds. Absent when 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_stamp: Option<u64>,
    /// Policy generation the decision was made with.
    pub generation: u32,
    /// Tamper events: what was tried and at what. (Absent from other lines, so that lines
    /// written before tamper events stay byte for byte what they were.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tamper: Option<TamperAttempt>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TamperAttempt {
    pub what: Tamper,
    /// The target, for a human (e.g. `pid 812 (the daemon), signal 9`).
    pub target: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub address: String,
    pub port: u16,
    /// `tcp` or `udp` (or the protocol number).
    pub protocol: String,
    /// `ipv4` or `ipv6`, as the caller used it.
    pub family: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
}
