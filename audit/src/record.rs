//! One audit record: what happened, who did it, what it was about, and its place in the chain.
//!
//! Every type here rejects unknown fields: a field the hash does not know about could otherwise
//! be slipped into an export without breaking verification.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::checkpoint::Checkpoint;
use super::digest::Digest;
use super::time::Timestamp;

/// One record of the audit trail, exactly as exported and verified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the chain, from 0, without gaps.
    pub seq: u64,
    /// When the control plane recorded it (RFC 3339, UTC, milliseconds).
    pub time: Timestamp,
    /// What kind of step this is.
    pub kind: Kind,
    /// Who caused it, and through which channel.
    pub actor: Actor,
    /// What it was about.
    #[serde(default, skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
    /// Present on, and only on, `checkpoint` records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// Hash of the previous record ([`Digest::GENESIS`] for seq 0).
    pub prev: Digest,
    /// SHA-256 of this record's canonical form (see `canonical`).
    pub hash: Digest,
}

/// The kind of a record. The names are stable: they are hashed and exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An agent tried an exec or a connect that a rule reported (audit, deny, approve).
    Attempt,
    /// An approval request was opened (or an attempt de-duplicated into one).
    Request,
    /// A human (or expiry) decided a request.
    Decision,
    /// A grant was issued to a host.
    Grant,
    /// The kernel consumed a grant.
    GrantUse,
    /// A policy was put, replaced or rolled back.
    PolicyChange,
    /// A human or a host authenticated to the control plane.
    Login,
    /// A signed checkpoint over the chain head (written by the chain itself).
    Checkpoint,
    /// A chat account was linked to a person, or unlinked.
    ChatLink,
    /// A chat callback or click the server refused (bad signature, replay, unlinked user,
    /// not an approver of the rule, already decided …).
    ChatRefusal,
    /// A host's kernel counted events of a session that it could not send (ring buffer
    /// full, or the session's refusal-event rate exceeded): attempts without their record.
    EventsMissing,
}

impl Kind {
    /// The stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Attempt => "attempt",
            Kind::Request => "request",
            Kind::Decision => "decision",
            Kind::Grant => "grant",
            Kind::GrantUse => "grant_use",
            Kind::PolicyChange => "policy_change",
            Kind::Login => "login",
            Kind::Checkpoint => "checkpoint",
            Kind::ChatLink => "chat_link",
            Kind::ChatRefusal => "chat_refusal",
            Kind::EventsMissing => "events_missing",
        }
    }
}

/// Who caused a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// What sort of principal.
    pub kind: ActorKind,
    /// Its stable identity: user name, host name, agent group/session, server id.
    pub id: String,
    /// How it reached us: `kernel`, `slack`, `teams`, `cli`, `api`, `mcp`, `local` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The sort of principal behind an [`Actor`]. Stable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A human (approver, security engineer, auditor).
    Person,
    /// A host daemon (`countersign-agent`).
    Host,
    /// An AI agent (a process in an agent group).
    Agent,
    /// The control plane itself (checkpoints, expiries).
    Server,
}

impl ActorKind {
    /// The stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Person => "person",
            ActorKind::Host => "host",
            ActorKind::Agent => "agent",
            ActorKind::Server => "server",
        }
    }
}

/// The operation an attempt, request or grant is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `execve`/`execveat` (including argv mismatches).
    Exec,
    /// `connect`/`sendmsg`.
    Connect,
    /// An attempt on the enforcement itself (leaving the session, signalling the daemon,
    /// `bpf()` …); `details.tamper` says what and at what.
    Tamper,
}

impl Operation {
    /// The stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Exec => "exec",
            Operation::Connect => "connect",
            Operation::Tamper => "tamper",
        }
    }
}

/// What a record is about. Every field is optional so that one shape serves every kind;
/// what does not fit goes into `details`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Host name of the agent host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Agent group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Session inside the agent group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// exec, connect or tamper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Rule id (absent: the agent group's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What the rule said: `allow`, `audit`, `deny`, `approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The verdict: an attempt's outcome (`allowed`, `refused`, `killed`, `would_refuse`,
    /// `granted`) or a request's decision (`approved`, `denied`, `expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Approval request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Grant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Operation fingerprint (hex), the key of grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Executed file (exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// Arguments, `argv[0]` included (exec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Destination (connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Free text: the agent's or the approver's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Anything else (pid, policy version, N-of-M state …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
}

impl Subject {
    /// True when no field is set (the subject is then left out of the record).
    pub fn is_empty(&self) -> bool {
        *self == Subject::default()
    }
}

/// Where a connect went, as the host event log reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// IP address as text (`10.0.0.1`, `::ffff:10.0.0.1`).
    pub address: String,
    /// Destination port.
    pub port: u16,
    /// `tcp` or `udp` (or the protocol number).
    pub protocol: String,
    /// `ipv4` or `ipv6`, as the caller used it.
    pub family: String,
}
