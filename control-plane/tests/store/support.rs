//! Builders for events, specs and a judge with the contract's N-of-M rules.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use control_plane::decide::Refusal;
use control_plane::store::{
    Close, DecisionRow, Ingest, Judgement, RequestRow, RequestSpec, RequestState, Store, Verdict,
};
use countersign_api::pb;
use countersign_api::verdict::{Action, Judged, Mode, Outcome};

/// A fixed "now" (tests move time by adding to it).
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_442_400)
}

/// An exec operation of `session` in group `coding`.
pub fn op(session: &str, fingerprint: &str) -> pb::Operation {
    pb::Operation {
        agent_group: "coding".into(),
        session: session.into(),
        cgroup: format!("/countersign/coding/{session}"),
        launching_user: "dave".into(),
        uid: 1000,
        pid: 4242,
        comm: "kubectl".into(),
        binary: "/usr/bin/kubectl".into(),
        argv: vec![
            "kubectl".into(),
            "delete".into(),
            "pod".into(),
            "web".into(),
        ],
        fingerprint: fingerprint.into(),
        ..pb::Operation::default()
    }
}

/// An event record (`action` and `outcome` named as in event logs).
pub fn event(seq: u64, action: &str, outcome: &str, op: pb::Operation) -> pb::EventRecord {
    let mut e = pb::EventRecord {
        sequence: seq,
        time: Some(t0().into()),
        kind: pb::OperationKind::Exec.into(),
        operation: Some(op),
        rule: "kubectl-mutations".into(),
        ..pb::EventRecord::default()
    };
    Judged {
        action: Action::parse(action).expect("an action"),
        outcome: Outcome::parse(outcome).expect("an outcome"),
        mode: Mode::Lsm,
    }
    .stamp(&mut e);
    e
}

/// A plain audited event (opens nothing).
pub fn plain(seq: u64) -> Ingest {
    Ingest {
        event: event(seq, "audit", "allowed", op("s-1", "00000000000000aa")),
        request: None,
    }
}

/// An `approve` refusal in `session` that opens (or joins) a request with `spec`.
pub fn refusal(seq: u64, session: &str, spec: &RequestSpec) -> Ingest {
    Ingest {
        event: event(seq, "approve", "refused", op(session, "9a3f00112233aabb")),
        request: Some(spec.clone()),
    }
}

/// A rule's spec: `min` approvals from `sre`, 1 h expiry, grants up to 10 min / 8 uses.
pub fn spec(min: u32) -> RequestSpec {
    RequestSpec {
        rule: "kubectl-mutations".into(),
        rule_description: "kubectl changes need an SRE".into(),
        approver_groups: vec!["sre".into()],
        approvals_required: min,
        expires_in: Duration::from_secs(3600),
        max_grant_ttl: Duration::from_secs(600),
        max_grant_uses: 8,
        allow_launcher: false,
    }
}

/// The contract's deciding rules, reduced to what the store needs to be tested with.
pub fn judge(
    person: &str,
    verdict: Verdict,
) -> impl FnOnce(&RequestRow, &[DecisionRow]) -> Result<Judgement, Refusal> + Send {
    let person = person.to_owned();
    move |r, decisions| {
        if let Some(mine) = decisions.iter().find(|d| d.decided_by == person) {
            if mine.verdict == verdict {
                return Ok(Judgement::Repeat(mine.clone()));
            }
            return Err(Refusal::ChangedMind {
                request: r.id.clone(),
                decided: format!("{:?}", mine.verdict),
                at: String::new(),
            });
        }
        if r.state != RequestState::Pending {
            return Err(Refusal::Closed {
                request: r.id.clone(),
                state: r.state.as_str(),
                by: String::new(),
            });
        }
        let close = match &verdict {
            Verdict::Deny { .. } => Some(Close::Deny),
            _ => {
                let mut approvers: Vec<String> = decisions
                    .iter()
                    .filter(|d| d.verdict.is_approval())
                    .map(|d| d.decided_by.clone())
                    .collect();
                approvers.push(person.clone());
                let complete = approvers.len() >= r.spec.approvals_required as usize;
                let (uses, ttl) = match verdict {
                    Verdict::ApproveFor { duration, uses } => (uses, duration),
                    _ => (1, r.spec.max_grant_ttl),
                };
                complete.then_some(Close::Approve {
                    uses,
                    ttl,
                    approvers,
                })
            }
        };
        Ok(Judgement::Record {
            decided_by: person,
            channel: "cli".into(),
            verdict,
            close,
        })
    }
}

/// Every decision event of `host`, kinds only (`opened:2` carries the attempts).
pub async fn stream_kinds(store: &Store, host: &str) -> Vec<String> {
    use pb::decision_event::Event;
    let events = store.decision_events(host, 0, 1000).await.expect("events");
    let mut cursors: Vec<u64> = events
        .iter()
        .map(|e| e.cursor.parse().expect("decimal cursor"))
        .collect();
    let sorted = {
        let mut s = cursors.clone();
        s.sort_unstable();
        s.dedup();
        s
    };
    assert_eq!(cursors, sorted, "cursors increase");
    cursors.clear();
    events
        .iter()
        .map(|e| match &e.event {
            Some(Event::Opened(o)) => format!("opened:{}", o.attempts),
            Some(Event::Grant(_)) => "grant".into(),
            Some(Event::Closed(c)) => format!("closed:{}", c.state().as_str_name()),
            Some(Event::Revocation(_)) => "revocation".into(),
            None => "none".into(),
        })
        .collect()
}

/// Number of audit records of `kind`.
pub async fn audit_count(store: &Store, kind: &str) -> usize {
    store
        .audit_records(None, 10_000)
        .await
        .expect("records")
        .iter()
        .filter(|r| r.kind.as_str() == kind)
        .count()
}
