//! `--json` output: the gRPC messages as JSON objects (prost types have no serde), with
//! RFC 3339 times, durations in seconds and enums as lowercase names.

use std::time::SystemTime;

use countersign_api::pb;
use serde_json::{json, Value};

use crate::render::time::{duration_from_pb, from_pb, rfc3339};

fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    from_pb(ts).map_or(Value::Null, |t: SystemTime| Value::String(rfc3339(t)))
}

fn seconds(d: Option<&prost_types::Duration>) -> Value {
    duration_from_pb(d).map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// `pending`, `approved`, `denied`, `expired` (`unspecified` for anything else).
pub fn state_name(state: pb::RequestState) -> &'static str {
    match state {
        pb::RequestState::Pending => "pending",
        pb::RequestState::Approved => "approved",
        pb::RequestState::Denied => "denied",
        pb::RequestState::Expired => "expired",
        pb::RequestState::Unspecified => "unspecified",
    }
}

/// An operation.
pub fn operation(op: &pb::Operation) -> Value {
    json!({
        "agent_group": op.agent_group,
        "session": op.session,
        "cgroup": op.cgroup,
        "cgroup_id": op.cgroup_id,
        "launching_user": op.launching_user,
        "uid": op.uid,
        "gid": op.gid,
        "pid": op.pid,
        "tgid": op.tgid,
        "comm": op.comm,
        "binary": op.binary,
        "device": op.device,
        "inode": op.inode,
        "argv": op.argv,
        "argv_truncated": op.argv_truncated,
        "parents": op.parents.iter().map(|p| json!({
            "pid": p.pid, "comm": p.comm, "exe": p.exe,
        })).collect::<Vec<_>>(),
        "destination": op.destination.as_ref().map(|d| json!({
            "address": d.address, "port": d.port, "protocol": d.protocol, "family": d.family,
        })),
        "fingerprint": op.fingerprint,
    })
}

/// One person's decision; `verdict` is `approve_once`, `approve_for` (with `duration_seconds`
/// and `uses`) or `deny` (with `reason`).
pub fn decision(d: &pb::Decision) -> Value {
    let mut v = json!({
        "request_id": d.request_id,
        "decided_by": d.decided_by,
        "time": time(d.time.as_ref()),
        "grant_id": d.grant_id,
    });
    let verdict = match &d.verdict {
        Some(pb::decision::Verdict::ApproveOnce(_)) => json!({"verdict": "approve_once"}),
        Some(pb::decision::Verdict::ApproveForDuration(f)) => json!({
            "verdict": "approve_for",
            "duration_seconds": seconds(f.duration.as_ref()),
            "uses": f.uses,
        }),
        Some(pb::decision::Verdict::Deny(deny)) => {
            json!({"verdict": "deny", "reason": deny.reason})
        }
        None => json!({"verdict": null}),
    };
    if let (Value::Object(out), Value::Object(extra)) = (&mut v, verdict) {
        out.extend(extra);
    }
    v
}

/// A request with its operation and decisions.
pub fn request(r: &pb::ApprovalRequest) -> Value {
    json!({
        "request_id": r.request_id,
        "host": r.host,
        "operation": r.operation.as_ref().map(operation),
        "rule": r.rule,
        "rule_description": r.rule_description,
        "first_seen": time(r.first_seen.as_ref()),
        "last_seen": time(r.last_seen.as_ref()),
        "attempts": r.attempts,
        "over_cap": r.over_cap,
        "expires_at": time(r.expires_at.as_ref()),
        "state": state_name(r.state()),
        "approvals_required": r.approvals_required,
        "approver_groups": r.approver_groups,
        "decisions": r.decisions.iter().map(decision).collect::<Vec<_>>(),
        "reason": r.reason,
        "grant_id": r.grant_id,
        "max_grant_ttl_seconds": seconds(r.max_grant_ttl.as_ref()),
        "max_grant_uses": r.max_grant_uses,
    })
}

/// A policy revision (its YAML when present).
pub fn policy(p: &pb::PolicyDocument) -> Value {
    json!({
        "revision": p.revision,
        "author": p.author,
        "created": time(p.created.as_ref()),
        "comment": p.comment,
        "yaml": p.yaml,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_as_json() {
        let r = pb::ApprovalRequest {
            request_id: "r-3f9a1c02de".into(),
            host: "build-01".into(),
            state: pb::RequestState::Pending as i32,
            expires_at: Some(prost_types::Timestamp {
                seconds: 1_795_442_592,
                nanos: 0,
            }),
            max_grant_ttl: Some(prost_types::Duration {
                seconds: 600,
                nanos: 0,
            }),
            decisions: vec![pb::Decision {
                decided_by: "alice".into(),
                verdict: Some(pb::decision::Verdict::ApproveForDuration(
                    pb::ApproveForDuration {
                        duration: Some(prost_types::Duration {
                            seconds: 300,
                            nanos: 0,
                        }),
                        uses: 2,
                    },
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = request(&r);
        assert_eq!(v["state"], "pending");
        assert_eq!(v["expires_at"], "2026-11-23T14:03:12.000Z");
        assert_eq!(v["first_seen"], Value::Null);
        assert_eq!(v["max_grant_ttl_seconds"], 600.0);
        assert_eq!(v["decisions"][0]["verdict"], "approve_for");
        assert_eq!(v["decisions"][0]["duration_seconds"], 300.0);
        assert_eq!(v["decisions"][0]["uses"], 2);
        assert_eq!(v["operation"], Value::Null);
    }
}
