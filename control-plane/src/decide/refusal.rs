//! Why a decision is not recorded, as a type: the judge returns it, the gRPC service turns it
//! into a status in one place (`From<Refusal> for Status`), and the chat bridges match its
//! variants. Nothing reads the wording of a message to learn what happened. (An unknown
//! request is the store's `NotFound`, a lost race its `Precondition`.)

use thiserror::Error;
use tonic::{Code, Status};

/// A refused decision. The messages are what callers read (the CLI prints them, chat
/// clickers see them capitalised).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The person has no approver role.
    #[error("person '{person}' is not an approver")]
    NotApprover { person: String },
    /// The person is not in any approver group of the request's rule.
    #[error("person '{person}' is not in an approver group of rule '{rule}' (groups: {groups})")]
    NotInApproverGroup {
        person: String,
        rule: String,
        /// The rule's groups, comma-separated.
        groups: String,
    },
    /// The person launched the agent session and the rule does not let launchers approve.
    #[error(
        "you launched this agent session ({group}/{session}): rule '{rule}' does not let the \
         launching user approve its requests; ask another approver"
    )]
    Launcher {
        group: String,
        session: String,
        rule: String,
    },
    /// Nobody is known to have launched the agent session (it was not started with
    /// `countersign-agent launch`, or the work ran outside every session), so separation of
    /// duties cannot be checked, and the rule does not waive it.
    #[error(
        "nobody is known to have launched {what}, so nobody can be kept from approving their \
         own agent's work: rule '{rule}' approves only with a known launcher. Start agent \
         sessions with `countersign-agent launch`, or waive the check in the rule \
         (approvers: {{ allow_launcher: true }}); denying is still possible"
    )]
    UnknownLauncher { what: String, rule: String },
    /// The person decided this request before, differently.
    #[error(
        "you already decided request {request}: {decided} at {at}; a decision cannot be changed"
    )]
    ChangedMind {
        request: String,
        /// Their decision, described ("approved once").
        decided: String,
        at: String,
    },
    /// Nobody decided in time.
    #[error("request {request} expired at {at}")]
    Expired { request: String, at: String },
    /// Others decided it already.
    #[error("request {request} is already {state}{by}")]
    Closed {
        request: String,
        /// `approved` or `denied`.
        state: &'static str,
        /// " by alice at …", with the grant when approved; may be empty.
        by: String,
    },
    /// The grant asked for is outside the rule's or the kernel's limits (the message names
    /// the limit).
    #[error("{0}")]
    OutOfLimits(String),
}

impl Refusal {
    /// The gRPC code of the refusal.
    pub fn code(&self) -> Code {
        match self {
            Self::NotApprover { .. }
            | Self::NotInApproverGroup { .. }
            | Self::Launcher { .. }
            | Self::UnknownLauncher { .. } => Code::PermissionDenied,
            Self::ChangedMind { .. } | Self::Expired { .. } | Self::Closed { .. } => {
                Code::FailedPrecondition
            }
            Self::OutOfLimits(_) => Code::InvalidArgument,
        }
    }

    /// The code of a `chat_refusal` audit record (stable: auditors filter on it).
    pub fn audit_code(&self) -> &'static str {
        match self {
            Self::NotApprover { .. } | Self::NotInApproverGroup { .. } => "not_allowed",
            Self::Launcher { .. } => "launcher",
            Self::UnknownLauncher { .. } => "unknown_launcher",
            Self::ChangedMind { .. } | Self::Expired { .. } | Self::Closed { .. } => {
                "already_decided"
            }
            Self::OutOfLimits(_) => "invalid",
        }
    }
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Self {
        Status::new(r.code(), r.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_one_status_and_one_audit_code() {
        let cases = [
            (
                Refusal::Launcher {
                    group: "ai".into(),
                    session: "s1".into(),
                    rule: "kubectl".into(),
                },
                Code::PermissionDenied,
                "launcher",
            ),
            (
                Refusal::UnknownLauncher {
                    what: "agent session ai/s1".into(),
                    rule: "kubectl".into(),
                },
                Code::PermissionDenied,
                "unknown_launcher",
            ),
            (
                Refusal::NotApprover {
                    person: "ann".into(),
                },
                Code::PermissionDenied,
                "not_allowed",
            ),
            (
                Refusal::Closed {
                    request: "r-1".into(),
                    state: "denied",
                    by: " by bob at 2026-12-06T15:00:00Z".into(),
                },
                Code::FailedPrecondition,
                "already_decided",
            ),
            (
                Refusal::OutOfLimits("at most 8 uses".into()),
                Code::InvalidArgument,
                "invalid",
            ),
        ];
        for (refusal, code, audit) in cases {
            let status = Status::from(refusal.clone());
            assert_eq!(
                (status.code(), status.message(), refusal.audit_code()),
                (code, refusal.to_string().as_str(), audit)
            );
        }
        assert_eq!(
            Refusal::Closed {
                request: "r-1".into(),
                state: "denied",
                by: " by bob at 2026-12-06T15:00:00Z".into(),
            }
            .to_string(),
            "request r-1 is already denied by bob at 2026-12-06T15:00:00Z"
        );
    }
}
