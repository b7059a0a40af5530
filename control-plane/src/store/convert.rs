//! Store rows as the protobuf messages of the API (for the RPC handlers).

use super::rows::{DecisionRow, RequestRow, Verdict};
use crate::rpc::pb;

impl Verdict {
    /// As `Decision.verdict`.
    pub fn to_pb(&self) -> pb::decision::Verdict {
        match self {
            Verdict::ApproveOnce => pb::decision::Verdict::ApproveOnce(pb::ApproveOnce {}),
            Verdict::ApproveFor { duration, uses } => {
                pb::decision::Verdict::ApproveForDuration(pb::ApproveForDuration {
                    duration: prost_types::Duration::try_from(*duration).ok(),
                    uses: *uses,
                })
            }
            Verdict::Deny { reason } => pb::decision::Verdict::Deny(pb::Deny {
                reason: reason.clone(),
            }),
        }
    }
}

impl DecisionRow {
    /// As a `Decision` message.
    pub fn to_pb(&self) -> pb::Decision {
        pb::Decision {
            request_id: self.request_id.clone(),
            decided_by: self.decided_by.clone(),
            time: Some(self.time.into()),
            verdict: Some(self.verdict.to_pb()),
            grant_id: self.grant_id.clone().unwrap_or_default(),
        }
    }
}

impl RequestRow {
    /// As an `ApprovalRequest` message, with its decisions.
    pub fn to_pb(&self, decisions: &[DecisionRow]) -> pb::ApprovalRequest {
        pb::ApprovalRequest {
            request_id: self.id.clone(),
            host: self.host.clone(),
            operation: Some(self.operation.clone()),
            rule: self.spec.rule.clone(),
            rule_description: self.spec.rule_description.clone(),
            first_seen: Some(self.first_seen.into()),
            last_seen: Some(self.last_seen.into()),
            attempts: self.attempts,
            expires_at: Some(self.expires_at.into()),
            state: self.state.to_pb().into(),
            approvals_required: self.spec.approvals_required,
            approver_groups: self.spec.approver_groups.clone(),
            decisions: decisions.iter().map(DecisionRow::to_pb).collect(),
            reason: self.reason.clone(),
            grant_id: self.grant_id.clone().unwrap_or_default(),
            max_grant_ttl: prost_types::Duration::try_from(self.spec.max_grant_ttl).ok(),
            max_grant_uses: self.spec.max_grant_uses,
        }
    }
}
