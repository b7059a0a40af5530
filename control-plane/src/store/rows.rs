//! The values the store hands out and takes in (one struct per stored concept).

use std::time::{Duration, SystemTime};

use crate::rpc::pb;

/// One uploaded event, with the spec of the request it would open (the server resolves the
/// event's rule in its current policy; `None` when the event cannot open a request).
#[derive(Clone, Debug)]
pub struct Ingest {
    /// The record as the daemon sent it.
    pub event: pb::EventRecord,
    /// Spec of the request an `approve` + `refused`/`killed` event opens or joins.
    pub request: Option<RequestSpec>,
}

/// What an upload achieved.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    /// Highest contiguous sequence now stored for the host (what the daemon may drop).
    pub acked: u64,
    /// Events newly stored by this batch (duplicates not counted).
    pub stored: usize,
    /// Requests created by this batch (state after the batch).
    pub opened: Vec<RequestRow>,
    /// Pending requests this batch joined (attempts added), state after the batch.
    pub joined: Vec<RequestRow>,
}

/// How a request is to be decided: taken from the policy rule when the request opens, and
/// frozen with it (a later policy change does not move the goalposts of a pending request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    /// Rule id that asked for approval.
    pub rule: String,
    /// Its description, shown to approvers.
    pub rule_description: String,
    /// Groups whose members may decide.
    pub approver_groups: Vec<String>,
    /// Distinct approvals needed (N of N-of-M).
    pub approvals_required: u32,
    /// Lifetime of the pending request.
    pub expires_in: Duration,
    /// Longest grant an approver may give.
    pub max_grant_ttl: Duration,
    /// Most uses an approver may give (0: unlimited).
    pub max_grant_uses: u32,
    /// The launching user may approve their own agent's request.
    pub allow_launcher: bool,
}

/// State of a request. Only `Pending` ever changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestState {
    /// Waiting for (more) approvals.
    Pending,
    /// Approved: a grant was issued.
    Approved,
    /// Someone denied it.
    Denied,
    /// Nobody decided in time.
    Expired,
}

impl RequestState {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RequestState> {
        Some(match s {
            "pending" => RequestState::Pending,
            "approved" => RequestState::Approved,
            "denied" => RequestState::Denied,
            "expired" => RequestState::Expired,
            _ => return None,
        })
    }

    /// The protobuf enum.
    pub fn to_pb(self) -> pb::RequestState {
        match self {
            RequestState::Pending => pb::RequestState::Pending,
            RequestState::Approved => pb::RequestState::Approved,
            RequestState::Denied => pb::RequestState::Denied,
            RequestState::Expired => pb::RequestState::Expired,
        }
    }
}

/// An approval request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRow {
    /// `r-` + 10 hex digits.
    pub id: String,
    /// Host that raised it.
    pub host: String,
    /// Agent group and session of the operation.
    pub agent_group: String,
    /// Session inside the group (may be empty).
    pub session: String,
    /// Operation id (32 hex digits; 16 from daemons before exact grant binding).
    pub fingerprint: String,
    /// `exec` or `connect`.
    pub kind: String,
    /// The operation (from the first attempt).
    pub operation: pb::Operation,
    /// How it is decided (frozen at creation).
    pub spec: RequestSpec,
    /// The agent's reason when it asked ahead.
    pub reason: String,
    /// Where it stands.
    pub state: RequestState,
    /// Refused attempts seen (0 when only asked ahead).
    pub attempts: u32,
    /// Kernel refusals of other operations of this session, after it opened, that opened no
    /// request because the session or host had as many open as it may: the flood behind it.
    pub over_cap: u32,
    /// Creation and last attempt.
    pub first_seen: SystemTime,
    /// Last attempt (or creation).
    pub last_seen: SystemTime,
    /// When it expires if still pending.
    pub expires_at: SystemTime,
    /// Grant issued on approval.
    pub grant_id: Option<String>,
    /// Who launched the agent session (from the operation).
    pub launching_user: String,
}

/// What one person decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A grant with one use.
    ApproveOnce,
    /// A grant for a while (`uses` 0: unlimited within `duration`).
    ApproveFor {
        /// Lifetime of the grant.
        duration: Duration,
        /// Maximum uses (0: unlimited).
        uses: u32,
    },
    /// Refusal, with a reason shown to the launching user.
    Deny {
        /// Why.
        reason: String,
    },
}

impl Verdict {
    /// True for both approvals.
    pub fn is_approval(&self) -> bool {
        !matches!(self, Verdict::Deny { .. })
    }
}

/// One person's decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRow {
    /// The request.
    pub request_id: String,
    /// Person who decided.
    pub decided_by: String,
    /// `cli`, `api`, `slack` …
    pub channel: String,
    /// When.
    pub time: SystemTime,
    /// What.
    pub verdict: Verdict,
    /// Grant issued when this decision completed the approvals.
    pub grant_id: Option<String>,
}

/// What a `decide` judge wants written.
#[derive(Clone, Debug)]
pub enum Judgement {
    /// The same person repeated the same verdict: nothing is written, this is returned.
    Repeat(DecisionRow),
    /// Record a decision, and close the request if it completes it.
    Record {
        /// Person deciding.
        decided_by: String,
        /// Channel they used.
        channel: String,
        /// Their verdict.
        verdict: Verdict,
        /// Closing the request with this decision (None: more approvals needed).
        close: Option<Close>,
    },
}

/// How a decision closes a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Close {
    /// Issue a grant with these limits.
    Approve {
        /// Uses (0: unlimited until expiry).
        uses: u32,
        /// Lifetime from now.
        ttl: Duration,
        /// Everybody who approved (N-of-M).
        approvers: Vec<String>,
    },
    /// The request is denied.
    Deny,
}

/// The result of `decide`.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The request after the decision.
    pub request: RequestRow,
    /// The decision recorded (or the existing one, when `repeated`).
    pub decision: DecisionRow,
    /// The grant, when the request is approved (also on a repeat of an approved request).
    pub grant: Option<GrantRow>,
    /// True when nothing was written (idempotent repeat).
    pub repeated: bool,
}

/// A grant issued to a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRow {
    /// 16 hex digits of a nonzero u64 (the kernel's grant map key).
    pub grant_id: String,
    /// Request it answers.
    pub request_id: String,
    /// Host it is installed on.
    pub host: String,
    /// Scope: agent group and session.
    pub agent_group: String,
    /// Session (empty: the whole group).
    pub session: String,
    /// Operation fingerprint it lets through.
    pub fingerprint: String,
    /// Uses granted (0: unlimited until expiry).
    pub uses: u32,
    /// Uses reported by the host so far.
    pub uses_consumed: u32,
    /// Lifetime from `granted_at`.
    pub ttl: Duration,
    /// When it was issued.
    pub granted_at: SystemTime,
    /// Everybody who approved.
    pub approvers: Vec<String>,
    /// Revoked before it ran out.
    pub revoked: bool,
}

impl GrantRow {
    /// `granted_at + ttl`.
    pub fn expires_at(&self) -> SystemTime {
        self.granted_at + self.ttl
    }

    /// The protobuf message sent to the daemon.
    pub fn to_pb(&self) -> pb::Grant {
        pb::Grant {
            grant_id: self.grant_id.clone(),
            request_id: self.request_id.clone(),
            agent_group: self.agent_group.clone(),
            session: self.session.clone(),
            fingerprint: self.fingerprint.clone(),
            uses: self.uses,
            ttl: prost_types::Duration::try_from(self.ttl).ok(),
            granted_at: Some(self.granted_at.into()),
            approvers: self.approvers.clone(),
            expires_at: Some(self.expires_at().into()),
        }
    }
}

/// A stored policy revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRow {
    /// Revision id: `p-` + a zero-padded decimal counter (`p-0001`), so ids sort by age.
    pub revision: String,
    /// The YAML as written.
    pub yaml: String,
    /// Person who put it.
    pub author: String,
    /// Their comment.
    pub comment: String,
    /// When.
    pub created: SystemTime,
}

impl PolicyRow {
    /// The protobuf document (`with_yaml` false for history listings).
    pub fn to_pb(&self, with_yaml: bool) -> pb::PolicyDocument {
        pb::PolicyDocument {
            revision: self.revision.clone(),
            yaml: if with_yaml {
                self.yaml.clone()
            } else {
                String::new()
            },
            author: self.author.clone(),
            created: Some(self.created.into()),
            comment: self.comment.clone(),
        }
    }
}

/// Which requests to list (all filters optional), oldest first.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Only in this state.
    pub state: Option<RequestState>,
    /// Only of this host.
    pub host: Option<String>,
    /// Only of this agent group.
    pub agent_group: Option<String>,
    /// Only of this session.
    pub session: Option<String>,
    /// Only with this fingerprint.
    pub fingerprint: Option<String>,
    /// At most this many (0: a default of 100).
    pub limit: u32,
    /// Page token: continue after this request id.
    pub after_id: Option<String>,
}
