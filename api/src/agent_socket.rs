//! Requests and responses of the agent socket (`RUN_DIR/agent-api.sock`): what a process inside
//! an agent session may ask the daemon about *its own session*. One JSON object per line each
//! way. Nothing here approves anything: approvals come only from people, through the control
//! plane.

use agent_common::{event::EventKind, Action};
use serde::{Deserialize, Serialize};

/// File name of the agent socket inside the daemon's run directory.
pub const SOCKET_NAME: &str = "agent-api.sock";

/// Environment variable naming the agent socket for processes of a session (`launch` sets
/// it; the agent-side CLI reads it).
pub const SOCKET_ENV: &str = "COUNTERSIGN_AGENT_SOCKET";

/// What an agent process may ask. The session is never a parameter: it is the caller's own,
/// read from the cgroup of the peer's pid (`SO_PEERCRED`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentRequest {
    /// The caller's session and whether the daemon reaches the control plane.
    Whoami,
    /// Why was this process (or the latest process of the session, without `pid`) refused?
    Why {
        #[serde(default)]
        pid: Option<u32>,
    },
    /// Requests of the caller's session that are pending or decided recently.
    Pending,
    /// Asks ahead for an operation the session has not tried yet, with a reason for the
    /// approvers. Exactly one of `exec` or `connect`.
    Request {
        #[serde(default)]
        exec: Option<ExecSpec>,
        #[serde(default)]
        connect: Option<ConnectSpec>,
        reason: String,
    },
    /// Waits until the operation `fingerprint` of the caller's session is granted, denied or
    /// expired, or until `timeout_ms` passes.
    Wait {
        fingerprint: String,
        timeout_ms: u64,
    },
}

/// An exec to ask ahead for: the binary as a path the daemon resolves, and argv (argv[0]
/// included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    pub binary: String,
    pub argv: Vec<String>,
}

/// A connection to ask ahead for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectSpec {
    /// IP address (no name resolution: the kernel judges addresses).
    pub address: String,
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AgentResponse {
    /// The request was malformed or not allowed (another session, not in an agent group...).
    Error {
        message: String,
    },
    Whoami {
        agent_group: String,
        session: String,
        /// The daemon has a live link to the control plane.
        connected: bool,
    },
    /// The refusal asked about; `None` when nothing was refused.
    Refusal {
        refusal: Option<Refusal>,
    },
    Requests {
        requests: Vec<RequestView>,
    },
    /// The ask-ahead request was forwarded (or queued while the control plane is away).
    Requested {
        request: RequestView,
    },
    /// How a wait ended.
    Waited {
        outcome: WaitOutcome,
    },
}

/// One refused operation of the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub time: String,
    pub pid: u32,
    /// `exec`, `connect` or `argv_mismatch`.
    pub kind: EventKind,
    /// `deny` (no request: asking will not help) or `approve` (a request was raised).
    pub action: Action,
    /// Rule id, `None` for the group default.
    pub rule: Option<String>,
    pub fingerprint: String,
    /// What was refused, for a person: `kubectl delete deploy web` or `10.0.0.1:5432/tcp`.
    pub operation: String,
    /// The request raised for it, when the rule asks for approval.
    pub request: Option<RequestView>,
}

/// A request as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    /// Server-side id; `None` while the daemon has not reached the control plane yet.
    pub request_id: Option<String>,
    pub fingerprint: String,
    pub operation: String,
    /// `pending`, `approved`, `denied` or `expired`.
    pub state: String,
    pub rule: Option<String>,
    /// RFC 3339, when known.
    pub expires_at: Option<String>,
    /// Denial reason, when denied.
    pub reason: Option<String>,
}

/// How a `wait` ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WaitOutcome {
    /// A grant is in the kernel: retrying now passes.
    Granted {
        grant_id: String,
        uses: u32,
        expires_at: String,
        approvers: Vec<String>,
    },
    Denied {
        decided_by: String,
        reason: String,
    },
    Expired,
    /// `timeout_ms` passed with no decision.
    TimedOut,
}
