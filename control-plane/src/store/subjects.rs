//! The audit entries the store writes, one builder per record kind (docs/audit.md).

use countersign_api::verdict::{Action, Outcome, Said};
use serde_json::{json, Map, Value};

use super::rows::{DecisionRow, GrantRow, PolicyRow, RequestRow, Verdict};
use crate::audit::{self, Actor, ActorKind, Entry, Kind, Subject, Timestamp};
use crate::rpc::pb;

fn actor(kind: ActorKind, id: impl Into<String>, channel: Option<&str>) -> Actor {
    Actor {
        kind,
        id: id.into(),
        channel: channel.map(str::to_owned),
    }
}

/// `group/session` (or just `group`): how an agent is named as an actor.
fn agent_id(group: &str, session: &str) -> String {
    if session.is_empty() {
        group.to_owned()
    } else {
        format!("{group}/{session}")
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// exec/connect/tamper of an event kind.
pub(super) fn operation_kind(kind: i32) -> Option<audit::Operation> {
    match pb::OperationKind::try_from(kind).ok()? {
        pb::OperationKind::Exec | pb::OperationKind::ArgvMismatch => Some(audit::Operation::Exec),
        pb::OperationKind::Connect => Some(audit::Operation::Connect),
        pb::OperationKind::Tamper => Some(audit::Operation::Tamper),
        pb::OperationKind::Unspecified => None,
    }
}

/// exec/connect of an operation (connect when it has a destination).
pub(super) fn kind_of(op: &pb::Operation) -> audit::Operation {
    if op.destination.is_some() {
        audit::Operation::Connect
    } else {
        audit::Operation::Exec
    }
}

/// Host, agent, session and what the operation was: shared by attempts and requests.
fn operation_subject(host: &str, op: &pb::Operation, kind: Option<audit::Operation>) -> Subject {
    Subject {
        host: some(host),
        agent: some(&op.agent_group),
        session: some(&op.session),
        operation: kind,
        fingerprint: some(&op.fingerprint),
        binary: some(&op.binary),
        argv: (!op.argv.is_empty()).then(|| op.argv.clone()),
        destination: op.destination.as_ref().map(|d| audit::Destination {
            address: d.address.clone(),
            port: u16::try_from(d.port).unwrap_or(0),
            protocol: d.protocol.clone(),
            family: d.family.clone(),
        }),
        ..Subject::default()
    }
}

/// An uploaded event: `attempt`, or `grant_use` when a grant let it through.
/// `request_id`: the request it opened or joined, or the request of the grant used.
/// `said`: its verdict ([`Said::of`]).
pub(super) fn event(
    host: &str,
    ev: &pb::EventRecord,
    said: &Said,
    request_id: Option<&str>,
) -> Entry {
    let default_op = pb::Operation::default();
    let op = ev.operation.as_ref().unwrap_or(&default_op);
    let grant_use = said.outcome == Some(Outcome::Granted) && !ev.grant_id.is_empty();
    let mut details = Map::new();
    details.insert("sequence".into(), json!(ev.sequence));
    if let Some(t) = ev
        .time
        .and_then(|t| std::time::SystemTime::try_from(t).ok())
    {
        let t = Timestamp::from_system_time(t).to_string();
        details.insert("event_time".into(), Value::String(t));
    }
    if let Some(mode) = said.mode {
        details.insert("mode".into(), json!(mode));
    }
    if op.pid != 0 {
        details.insert("pid".into(), json!(op.pid));
    }
    if !op.launching_user.is_empty() {
        details.insert("launching_user".into(), json!(op.launching_user));
    }
    if op.argv_truncated {
        details.insert("argv_truncated".into(), Value::Bool(true));
    }
    if !ev.flags.is_empty() {
        details.insert("flags".into(), json!(ev.flags));
    }
    if let Some(t) = &op.tamper {
        details.insert(
            "tamper".into(),
            json!({ "what": t.what, "target": t.target }),
        );
    }
    Entry {
        kind: if grant_use {
            Kind::GrantUse
        } else {
            Kind::Attempt
        },
        actor: actor(
            ActorKind::Agent,
            agent_id(&op.agent_group, &op.session),
            Some("kernel"),
        ),
        subject: Subject {
            rule: some(&ev.rule),
            action: said.action.map(|a| a.as_str().to_owned()),
            decision: said.outcome.map(|o| o.as_str().to_owned()),
            request_id: request_id.map(str::to_owned),
            grant_id: some(&ev.grant_id),
            details,
            ..operation_subject(host, op, operation_kind(ev.kind))
        },
    }
}

/// A request was opened (`channel`: `kernel` for a refusal, `local` for an agent asking
/// ahead through the agent socket).
pub(super) fn request(r: &RequestRow, channel: &str) -> Entry {
    let mut details = Map::new();
    details.insert(
        "approvals_required".into(),
        json!(r.spec.approvals_required),
    );
    details.insert("approver_groups".into(), json!(r.spec.approver_groups));
    details.insert(
        "expires_at".into(),
        json!(Timestamp::from_system_time(r.expires_at).to_string()),
    );
    if !r.launching_user.is_empty() {
        details.insert("launching_user".into(), json!(r.launching_user));
    }
    Entry {
        kind: Kind::Request,
        actor: actor(
            ActorKind::Agent,
            agent_id(&r.agent_group, &r.session),
            Some(channel),
        ),
        subject: Subject {
            rule: some(&r.spec.rule),
            action: Some(Action::Approve.as_str().into()),
            decision: Some("pending".into()),
            request_id: Some(r.id.clone()),
            reason: some(&r.reason),
            details,
            ..operation_subject(&r.host, &r.operation, Some(kind_of(&r.operation)))
        },
    }
}

/// Request fields every decision-like record carries.
pub(super) fn request_subject(r: &RequestRow) -> Subject {
    Subject {
        host: some(&r.host),
        agent: some(&r.agent_group),
        session: some(&r.session),
        operation: Some(kind_of(&r.operation)),
        rule: some(&r.spec.rule),
        request_id: Some(r.id.clone()),
        fingerprint: some(&r.fingerprint),
        ..Subject::default()
    }
}

/// One person's decision; `approvals` = approvals so far including this one.
pub(super) fn decision(r: &RequestRow, d: &DecisionRow, approvals: usize) -> Entry {
    let mut details = Map::new();
    let (decision, reason) = match &d.verdict {
        Verdict::ApproveOnce => {
            details.insert("verdict".into(), json!("approve_once"));
            ("approved", None)
        }
        Verdict::ApproveFor { duration, uses } => {
            details.insert("verdict".into(), json!("approve_for"));
            details.insert("duration_ms".into(), json!(duration.as_millis()));
            details.insert("uses".into(), json!(uses));
            ("approved", None)
        }
        Verdict::Deny { reason } => {
            details.insert("verdict".into(), json!("deny"));
            ("denied", some(reason))
        }
    };
    if d.verdict.is_approval() {
        details.insert("approvals".into(), json!(approvals));
        details.insert(
            "approvals_required".into(),
            json!(r.spec.approvals_required),
        );
    }
    Entry {
        kind: Kind::Decision,
        actor: actor(ActorKind::Person, &d.decided_by, Some(&d.channel)),
        subject: Subject {
            decision: Some(decision.into()),
            reason,
            grant_id: d.grant_id.clone(),
            details,
            ..request_subject(r)
        },
    }
}

/// A request expired: decided by the server.
pub(super) fn expiry(r: &RequestRow, server_id: &str) -> Entry {
    Entry {
        kind: Kind::Decision,
        actor: actor(ActorKind::Server, server_id, None),
        subject: Subject {
            decision: Some("expired".into()),
            ..request_subject(r)
        },
    }
}

/// A grant was issued (actor: the person whose decision completed the approvals).
pub(super) fn grant(r: &RequestRow, g: &GrantRow, by: &str, channel: &str) -> Entry {
    let mut details = Map::new();
    details.insert("uses".into(), json!(g.uses));
    details.insert("ttl_ms".into(), json!(g.ttl.as_millis()));
    details.insert("approvers".into(), json!(g.approvers));
    details.insert(
        "expires_at".into(),
        json!(Timestamp::from_system_time(g.expires_at()).to_string()),
    );
    Entry {
        kind: Kind::Grant,
        actor: actor(ActorKind::Person, by, Some(channel)),
        subject: Subject {
            decision: Some("approved".into()),
            grant_id: Some(g.grant_id.clone()),
            details,
            ..request_subject(r)
        },
    }
}

/// A grant was revoked.
pub(super) fn revocation(g: &GrantRow, rule: &str, by: &str, reason: &str) -> Entry {
    Entry {
        kind: Kind::Decision,
        actor: actor(ActorKind::Person, by, None),
        subject: Subject {
            host: some(&g.host),
            agent: some(&g.agent_group),
            session: some(&g.session),
            rule: some(rule),
            decision: Some("revoked".into()),
            request_id: Some(g.request_id.clone()),
            grant_id: Some(g.grant_id.clone()),
            fingerprint: some(&g.fingerprint),
            reason: some(reason),
            ..Subject::default()
        },
    }
}

/// A policy revision was put.
pub(super) fn policy_change(p: &PolicyRow, base: &str) -> Entry {
    let mut details = Map::new();
    details.insert("revision".into(), json!(p.revision));
    if !base.is_empty() {
        details.insert("base_revision".into(), json!(base));
    }
    let digest = audit::Digest::of(p.yaml.as_bytes());
    details.insert("sha256".into(), json!(digest.to_hex()));
    Entry {
        kind: Kind::PolicyChange,
        actor: actor(ActorKind::Person, &p.author, None),
        subject: Subject {
            reason: some(&p.comment),
            details,
            ..Subject::default()
        },
    }
}

/// A daemon registered.
pub(super) fn host_login(host: &str, reg: &pb::RegisterRequest) -> Entry {
    let mut details = Map::new();
    details.insert("agent_version".into(), json!(reg.agent_version));
    details.insert("kernel".into(), json!(reg.kernel));
    let mode = pb::EnforcementMode::try_from(reg.mode)
        .map(|m| m.as_str_name())
        .unwrap_or("ENFORCEMENT_MODE_UNSPECIFIED");
    details.insert("mode".into(), json!(mode));
    details.insert("agent_groups".into(), json!(reg.agent_groups));
    if !reg.policy_revision.is_empty() {
        details.insert("policy_revision".into(), json!(reg.policy_revision));
    }
    if let Some(o) = &reg.previous_outage {
        details.insert(
            "previous_outage".into(),
            json!({
                "pid": o.pid,
                "since": o.since.as_ref().map(|t| t.to_string()),
                "seconds": o.seconds,
                "clean": o.clean,
                "events_lost": o.events_lost,
            }),
        );
    }
    Entry {
        kind: Kind::Login,
        actor: actor(ActorKind::Host, host, None),
        subject: Subject {
            host: some(host),
            details,
            ..Subject::default()
        },
    }
}

/// A session's events the kernel could not send (`events_missing`): counted in the kernel, so
/// the trail says how many attempts it holds no record of. `lost`/`limited` are the increase
/// since the previous report; the totals are the session's counts so far.
pub(super) fn events_missing(
    host: &str,
    s: &pb::SessionCounters,
    lost: u64,
    limited: u64,
) -> Entry {
    let mut details = Map::new();
    details.insert("events_lost".into(), json!(lost));
    details.insert("events_limited".into(), json!(limited));
    details.insert("refused_total".into(), json!(s.refused));
    details.insert("granted_total".into(), json!(s.granted));
    details.insert("events_lost_total".into(), json!(s.events_lost));
    details.insert("events_limited_total".into(), json!(s.events_limited));
    details.insert("cgroup_id".into(), json!(s.cgroup_id));
    Entry {
        kind: Kind::EventsMissing,
        actor: actor(ActorKind::Host, host, Some("kernel")),
        subject: Subject {
            host: some(host),
            agent: some(&s.agent_group),
            session: some(&s.session),
            details,
            ..Subject::default()
        },
    }
}
