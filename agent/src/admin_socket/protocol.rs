//! Requests and responses of the admin socket.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Status,
    Reload,
    /// Where an agent group's cgroup is (for `launch`).
    Group {
        agent: String,
    },
    Grant {
        agent: String,
        session: Option<String>,
        /// 16 hex digits.
        fingerprint: String,
        uses: u32,
        ttl_ms: u64,
    },
    /// Records who launches a session (`launch`, before it moves into the session): the
    /// control plane keeps that person from approving the session's requests.
    Session {
        agent: String,
        session: String,
        user: String,
        uid: u32,
        /// The uid the session's command will run as (absent from launchers before
        /// `--root-agents`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runs_as: Option<u32>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Error {
        message: String,
    },
    Status(Box<Status>),
    Reloaded {
        generation: u32,
        warnings: Vec<String>,
    },
    Group {
        cgroup: String,
        mount: String,
    },
    Granted {
        grant_id: u64,
    },
    /// The session's launcher is on record (`recorded` false: a live session of that name
    /// kept its first launcher).
    Session {
        path: String,
        recorded: bool,
        /// What the launcher should tell its user before the command runs (e.g. an account
        /// the group's policy does not name).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub mode: String,
    pub mode_reason: String,
    pub kernel: String,
    pub programs: Vec<ProgramStatus>,
    pub groups: Vec<GroupStatus>,
    pub policy_files: Vec<String>,
    pub generation: u32,
    pub rules: usize,
    pub event_log: String,
    pub counters: Counters,
    /// Control plane revision of the policy in force (None: local files).
    #[serde(default)]
    pub policy_revision: Option<String>,
    /// The agent socket.
    #[serde(default)]
    pub agent_socket: String,
    /// The link to the control plane (None: standalone).
    #[serde(default)]
    pub uplink: Option<crate::uplink::UplinkStatus>,
    /// What the kernel counted per session, whatever reached the event log.
    #[serde(default)]
    pub sessions: Vec<SessionEvidence>,
    /// What this daemon protects against in its mode, absent ones included.
    #[serde(default)]
    pub protections: Vec<Protection>,
    /// The time no daemon ran before this one (None: the first daemon of this state dir).
    #[serde(default)]
    pub previous_outage: Option<crate::daemon::outage::Outage>,
}

/// One protection and how (or whether) it holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Protection {
    /// Stable name (`exec_rules`, `raw_sockets`, …).
    pub name: String,
    pub state: ProtectionState,
    /// How it holds, or what an agent can do while it is absent.
    pub how: String,
}

/// Whether a protection holds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionState {
    /// Refused before it happens (or the process is killed before it runs).
    Enforced,
    /// Not prevented: reported (fallback mode also kills the caller on entry to the call,
    /// which still runs).
    Detected,
    /// Neither refused nor reported.
    Absent,
}

/// One session's counters in the kernel (`agent_common::session`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionEvidence {
    /// The session's cgroup path (its id when the cgroup is gone).
    pub cgroup: String,
    pub cgroup_id: u64,
    pub refused: u64,
    pub granted: u64,
    /// Events that did not fit the ring buffer.
    pub events_lost: u64,
    /// Events dropped because the session exceeded its event rate.
    pub events_limited: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProgramStatus {
    pub name: String,
    pub hook: String,
    /// Pinned on bpffs: keeps enforcing while no daemon runs.
    pub pinned: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub cgroup: String,
    pub cgroup_id: u64,
    pub monitor: bool,
    /// Uids judged as this group's wherever they run (policy `accounts`).
    #[serde(default)]
    pub accounts: Vec<u32>,
    /// Guards the group opts out of (policy `permit`).
    #[serde(default)]
    pub permit: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    pub exec_judged: u64,
    pub exec_refused: u64,
    pub connect_judged: u64,
    pub connect_refused: u64,
    pub grants_used: u64,
    pub events_lost: u64,
    pub argv_mismatch: u64,
    pub failed_closed: u64,
    pub watch_errors: u64,
    pub events_logged: u64,
}

impl Counters {
    /// From the kernel's `STATS` counters (in `agent_common::policy::stats` order).
    pub fn from_kernel(v: &[u64], events_logged: u64) -> Self {
        let g = |i: usize| v.get(i).copied().unwrap_or(0);
        Self {
            exec_judged: g(0),
            exec_refused: g(1),
            connect_judged: g(2),
            connect_refused: g(3),
            grants_used: g(4),
            events_lost: g(5),
            argv_mismatch: g(6),
            failed_closed: g(7),
            watch_errors: g(8),
            events_logged,
        }
    }
}
