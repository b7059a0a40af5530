//! Store rows and audit records ↔ protobuf messages.

use tonic::Status;

use super::check;
use super::pb;
use crate::audit::{self, Record};
use crate::store::{DecisionRow, RequestRow, Verdict};

/// The full request as approvers see it, with its decisions so far.
pub fn approval_request(row: &RequestRow, decisions: &[DecisionRow]) -> pb::ApprovalRequest {
    pb::ApprovalRequest {
        request_id: row.id.clone(),
        host: row.host.clone(),
        operation: Some(row.operation.clone()),
        rule: row.spec.rule.clone(),
        rule_description: row.spec.rule_description.clone(),
        first_seen: Some(row.first_seen.into()),
        last_seen: Some(row.last_seen.into()),
        attempts: row.attempts,
        expires_at: Some(row.expires_at.into()),
        state: row.state.to_pb().into(),
        approvals_required: row.spec.approvals_required,
        approver_groups: row.spec.approver_groups.clone(),
        decisions: decisions.iter().map(decision).collect(),
        reason: row.reason.clone(),
        grant_id: row.grant_id.clone().unwrap_or_default(),
        max_grant_ttl: prost_types::Duration::try_from(row.spec.max_grant_ttl).ok(),
        max_grant_uses: row.spec.max_grant_uses,
        over_cap: row.over_cap,
    }
}

/// One person's decision.
pub fn decision(row: &DecisionRow) -> pb::Decision {
    use pb::decision::Verdict as V;
    let verdict = match &row.verdict {
        Verdict::ApproveOnce => V::ApproveOnce(pb::ApproveOnce {}),
        Verdict::ApproveFor { duration, uses } => V::ApproveForDuration(pb::ApproveForDuration {
            duration: prost_types::Duration::try_from(*duration).ok(),
            uses: *uses,
        }),
        Verdict::Deny { reason } => V::Deny(pb::Deny {
            reason: reason.clone(),
        }),
    };
    pb::Decision {
        request_id: row.request_id.clone(),
        decided_by: row.decided_by.clone(),
        time: Some(row.time.into()),
        verdict: Some(verdict),
        grant_id: row.grant_id.clone().unwrap_or_default(),
    }
}

/// The verdict of a `Decide` call (shape only; limits are the judge's business).
pub fn verdict(v: Option<&pb::decide_request::Verdict>) -> Result<Verdict, Status> {
    use pb::decide_request::Verdict as V;
    match v {
        None => Err(check::invalid(
            "verdict is required: approve_once, approve_for_duration or deny",
        )),
        Some(V::ApproveOnce(_)) => Ok(Verdict::ApproveOnce),
        Some(V::ApproveForDuration(a)) => Ok(Verdict::ApproveFor {
            duration: check::duration("approve_for_duration.duration", a.duration.as_ref())?,
            uses: a.uses,
        }),
        Some(V::Deny(d)) => {
            check::text("deny.reason", &d.reason, true)?;
            Ok(Verdict::Deny {
                reason: d.reason.trim().to_owned(),
            })
        }
    }
}

/// An audit record as the API returns it (the canonical line included, so clients can
/// re-verify it).
pub fn audit_record(record: &Record) -> Result<pb::AuditRecord, Status> {
    let line = audit::export::jsonl::to_line(record)
        .map_err(|e| Status::internal(format!("audit record {}: {e}", record.seq)))?;
    Ok(pb::AuditRecord {
        seq: record.seq,
        time: Some(record.time.system_time().into()),
        kind: record.kind.as_str().to_owned(),
        record_json: line,
        prev_hash: record.prev.to_hex(),
        hash: record.hash.to_hex(),
    })
}

/// An audit query filter. The library's [`audit::Filter`] has no session; it is returned
/// beside it (`subject.session` must equal it).
pub fn audit_filter(f: Option<&pb::AuditFilter>) -> Result<AuditSelection, Status> {
    let Some(f) = f else {
        return Ok(AuditSelection::default());
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let filter = audit::Filter {
        since: f
            .since
            .as_ref()
            .map(|t| check::time("filter.since", t))
            .transpose()?,
        until: f
            .until
            .as_ref()
            .map(|t| check::time("filter.until", t))
            .transpose()?,
        host: opt(&f.host),
        agent: opt(&f.agent_group),
        rule: opt(&f.rule),
        person: opt(&f.person),
        decision: opt(&f.decision),
    };
    if let (Some(since), Some(until)) = (filter.since, filter.until) {
        if until < since {
            return Err(check::invalid("filter.until is before filter.since"));
        }
    }
    Ok(AuditSelection {
        filter,
        session: opt(&f.session),
    })
}

/// Which audit records a query or export selects.
#[derive(Clone, Debug, Default)]
pub struct AuditSelection {
    /// The library filter (time, host, agent group, rule, person, decision).
    pub filter: audit::Filter,
    /// `subject.session` equals, when set.
    pub session: Option<String>,
}

impl AuditSelection {
    /// Whether `record` is selected.
    pub fn matches(&self, record: &Record) -> bool {
        self.filter.matches(record)
            && self
                .session
                .as_ref()
                .is_none_or(|s| record.subject.session.as_ref() == Some(s))
    }
}
