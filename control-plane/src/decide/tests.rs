//! The security core: who may decide, N-of-M, idempotence, closed requests, grant limits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::Code;

use super::*;
use crate::rpc::pb;
use crate::store::RequestSpec;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

fn spec() -> RequestSpec {
    RequestSpec {
        rule: "kubectl".into(),
        rule_description: "cluster changes".into(),
        approver_groups: vec!["sre".into(), "dba".into()],
        approvals_required: 1,
        expires_in: mins(60),
        max_grant_ttl: mins(10),
        max_grant_uses: 1,
        allow_launcher: false,
    }
}

fn request(spec: RequestSpec) -> RequestRow {
    RequestRow {
        id: "r-0000000001".into(),
        host: "web-01".into(),
        agent_group: "coding".into(),
        session: "s1".into(),
        fingerprint: "00000000000000aa".into(),
        kind: "exec".into(),
        operation: pb::Operation::default(),
        spec,
        reason: String::new(),
        state: RequestState::Pending,
        attempts: 1,
        first_seen: t(0),
        last_seen: t(0),
        expires_at: t(3600),
        grant_id: None,
        launching_user: "lena".into(),
        over_cap: 0,
    }
}

fn person(name: &str, groups: &[&str], roles: &[Role]) -> Person {
    Person {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        roles: roles.to_vec(),
        tokens: vec![],
    }
}

fn approver(name: &str) -> Person {
    person(name, &["sre"], &[Role::Approver])
}

fn decision(by: &str, verdict: Verdict, at: u64) -> DecisionRow {
    DecisionRow {
        request_id: "r-0000000001".into(),
        decided_by: by.into(),
        channel: "cli".into(),
        time: t(at),
        verdict,
        grant_id: None,
    }
}

fn deny(reason: &str) -> Verdict {
    Verdict::Deny {
        reason: reason.into(),
    }
}

fn for_(m: u64, uses: u32) -> Verdict {
    Verdict::ApproveFor {
        duration: mins(m),
        uses,
    }
}

fn ok(p: &Person, v: &Verdict, r: &RequestRow, d: &[DecisionRow]) -> Judgement {
    judge(p, "cli", v, r, d, t(60)).unwrap_or_else(|e| panic!("refused: {e:?}"))
}

fn refused(p: &Person, v: &Verdict, r: &RequestRow, d: &[DecisionRow]) -> Refusal {
    match judge(p, "cli", v, r, d, t(60)) {
        Ok(j) => panic!("accepted: {j:?}"),
        Err(e) => e,
    }
}

fn close_of(j: Judgement) -> Option<Close> {
    match j {
        Judgement::Record { close, .. } => close,
        Judgement::Repeat(d) => panic!("unexpected repeat {d:?}"),
    }
}

#[test]
fn one_approval_closes_with_one_use_and_the_rule_ttl() {
    let r = request(spec());
    let j = ok(&approver("alice"), &Verdict::ApproveOnce, &r, &[]);
    let Judgement::Record {
        decided_by,
        channel,
        verdict,
        close,
    } = j
    else {
        panic!("repeat")
    };
    assert_eq!((decided_by.as_str(), channel.as_str()), ("alice", "cli"));
    assert_eq!(verdict, Verdict::ApproveOnce);
    assert_eq!(
        close,
        Some(Close::Approve {
            uses: 1,
            ttl: mins(10),
            approvers: vec!["alice".into()]
        })
    );
}

#[test]
fn roles_and_groups() {
    let r = request(spec());
    let e = refused(
        &person("ann", &["sre"], &[Role::Auditor]),
        &Verdict::ApproveOnce,
        &r,
        &[],
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert_eq!(e.to_string(), "person 'ann' is not an approver");
    let e = refused(
        &person("adam", &["sre"], &[Role::Admin]),
        &deny("no"),
        &r,
        &[],
    );
    assert_eq!(e.code(), Code::PermissionDenied, "admins do not approve");
    let e = refused(
        &person("otto", &["web"], &[Role::Approver]),
        &Verdict::ApproveOnce,
        &r,
        &[],
    );
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.to_string()
            .contains("not in an approver group of rule 'kubectl' (groups: sre, dba)"),
        "{e:?}"
    );
    // Nobody: a certificate person absent from the people file.
    let e = refused(&Person::nobody("ghost"), &deny("x"), &r, &[]);
    assert_eq!(e.code(), Code::PermissionDenied);
    // The second group counts too.
    ok(
        &person("dora", &["dba"], &[Role::Approver]),
        &Verdict::ApproveOnce,
        &r,
        &[],
    );
    assert!(may_decide(&approver("alice"), &r));
    assert!(!may_decide(
        &person("otto", &["web"], &[Role::Approver]),
        &r
    ));
    assert!(!may_decide(&person("ann", &["sre"], &[Role::Auditor]), &r));
}

#[test]
fn launcher_cannot_approve_unless_allowed() {
    let r = request(spec());
    let lena = approver("lena");
    let e = refused(&lena, &Verdict::ApproveOnce, &r, &[]);
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.to_string().starts_with("you launched this agent session"),
        "{e:?}"
    );
    let e = refused(&lena, &for_(5, 1), &r, &[]);
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(!may_decide(&lena, &r));
    // Denying one's own agent's request only refuses: allowed.
    assert_eq!(
        close_of(ok(&lena, &deny("not me"), &r, &[])),
        Some(Close::Deny)
    );

    let mut allowed = spec();
    allowed.allow_launcher = true;
    let r = request(allowed);
    assert!(may_decide(&lena, &r));
    assert!(close_of(ok(&lena, &Verdict::ApproveOnce, &r, &[])).is_some());

    // An unknown launcher never matches a person (empty name): the request is listed (to be
    // denied) but nobody may approve it unless the rule waives the check.
    let mut r = request(spec());
    r.launching_user = String::new();
    assert!(may_decide(&approver("lena"), &r));
    match refused(&approver("lena"), &Verdict::ApproveOnce, &r, &[]) {
        Refusal::UnknownLauncher { what, .. } => assert!(what.contains("session"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        close_of(ok(&approver("lena"), &deny("no"), &r, &[])),
        Some(Close::Deny)
    );
    r.session = String::new();
    match refused(&approver("lena"), &Verdict::ApproveOnce, &r, &[]) {
        Refusal::UnknownLauncher { what, .. } => {
            assert!(what.contains("outside every session"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    r.spec.allow_launcher = true;
    assert!(close_of(ok(&approver("lena"), &Verdict::ApproveOnce, &r, &[])).is_some());
}

#[test]
fn n_of_m_needs_distinct_people() {
    let mut s = spec();
    s.approvals_required = 2;
    s.max_grant_uses = 3;
    let r = request(s);
    let first = ok(&approver("alice"), &for_(10, 3), &r, &[]);
    assert_eq!(close_of(first), None, "1 of 2");
    let earlier = [decision("alice", for_(10, 3), 30)];
    // alice again, same verdict: a repeat, not a second approval.
    match ok(&approver("alice"), &for_(10, 3), &r, &earlier) {
        Judgement::Repeat(d) => assert_eq!(d, earlier[0]),
        other => panic!("{other:?}"),
    }
    // bob completes it; the grant is the most restrictive of both approvals.
    let close = close_of(ok(&approver("bob"), &for_(5, 2), &r, &earlier));
    assert_eq!(
        close,
        Some(Close::Approve {
            uses: 2,
            ttl: mins(5),
            approvers: vec!["alice".into(), "bob".into()]
        })
    );
    let close = close_of(ok(&approver("bob"), &Verdict::ApproveOnce, &r, &earlier));
    assert_eq!(
        close,
        Some(Close::Approve {
            uses: 1,
            ttl: mins(10),
            approvers: vec!["alice".into(), "bob".into()]
        })
    );
}

#[test]
fn unlimited_uses_combine_with_limits() {
    let mut s = spec();
    s.approvals_required = 2;
    s.max_grant_uses = 0;
    let r = request(s);
    let earlier = [decision("alice", for_(10, 0), 30)];
    let close = close_of(ok(&approver("bob"), &for_(8, 4), &r, &earlier));
    assert_eq!(
        close,
        Some(Close::Approve {
            uses: 4,
            ttl: mins(8),
            approvers: vec!["alice".into(), "bob".into()]
        })
    );
    let close = close_of(ok(&approver("bob"), &for_(10, 0), &r, &earlier));
    assert!(
        matches!(close, Some(Close::Approve { uses: 0, .. })),
        "{close:?}"
    );
}

#[test]
fn any_deny_closes() {
    let mut s = spec();
    s.approvals_required = 3;
    let r = request(s);
    let earlier = [decision("alice", Verdict::ApproveOnce, 30)];
    assert_eq!(
        close_of(ok(&approver("bob"), &deny("too risky"), &r, &earlier)),
        Some(Close::Deny)
    );
}

#[test]
fn repeats_and_changed_minds() {
    let r = request(spec());
    let mine = [decision("alice", deny("no"), 30)];
    let mut closed = r.clone();
    closed.state = RequestState::Denied;
    // Same verdict (even after the close, even with another reason): the existing decision.
    for reason in ["no", "still no"] {
        match ok(&approver("alice"), &deny(reason), &closed, &mine) {
            Judgement::Repeat(d) => assert_eq!(d, mine[0]),
            other => panic!("{other:?}"),
        }
    }
    // Another verdict by the same person.
    let e = refused(&approver("alice"), &Verdict::ApproveOnce, &closed, &mine);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.to_string().contains(
            "you already decided request r-0000000001: denied (no) at 2023-11-14T22:13:50Z"
        ),
        "{e:?}"
    );
    // An approval with other parameters is another verdict too.
    let mut s = spec();
    s.approvals_required = 2;
    let r2 = request(s);
    let mine = [decision("alice", for_(10, 1), 30)];
    let e = refused(&approver("alice"), &for_(5, 1), &r2, &mine);
    assert_eq!(e.code(), Code::FailedPrecondition);
}

#[test]
fn closed_requests_name_who_and_when() {
    let mut r = request(spec());
    r.state = RequestState::Denied;
    let d = [decision("bob", deny("no"), 30)];
    let e = refused(&approver("alice"), &Verdict::ApproveOnce, &r, &d);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.to_string(),
        "request r-0000000001 is already denied by bob at 2023-11-14T22:13:50Z"
    );

    r.state = RequestState::Approved;
    r.grant_id = Some("00000000000000ff".into());
    let d = [decision("bob", Verdict::ApproveOnce, 30)];
    let e = refused(&approver("alice"), &deny("late"), &r, &d);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.to_string(),
        "request r-0000000001 is already approved by bob at 2023-11-14T22:13:50Z (grant 00000000000000ff)"
    );

    r.state = RequestState::Expired;
    let e = refused(&approver("alice"), &Verdict::ApproveOnce, &r, &[]);
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.to_string(),
        "request r-0000000001 expired at 2023-11-14T23:13:20Z"
    );
}

#[test]
fn pending_but_past_expiry_is_expired() {
    let r = request(spec());
    let e = judge(
        &approver("alice"),
        "cli",
        &Verdict::ApproveOnce,
        &r,
        &[],
        t(3600),
    )
    .expect_err("expired");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.to_string().contains("expired at"), "{e:?}");
    assert!(judge(
        &approver("alice"),
        "cli",
        &Verdict::ApproveOnce,
        &r,
        &[],
        t(3599)
    )
    .is_ok());
}

#[test]
fn grant_limits() {
    let mut s = spec();
    s.max_grant_uses = 3;
    let r = request(s);
    let alice = approver("alice");
    let bad = |v: Verdict| {
        let e = refused(&alice, &v, &r, &[]);
        assert_eq!(e.code(), Code::InvalidArgument, "{v:?}: {e:?}");
        e.to_string()
    };
    assert_eq!(
        bad(for_(0, 1)),
        "approve_for_duration.duration must be longer than 0"
    );
    assert_eq!(
        bad(for_(11, 1)),
        "approve_for_duration.duration 11m is longer than rule 'kubectl' allows: grants last at most 10m"
    );
    assert_eq!(
        bad(for_(10, 4)),
        "approve_for_duration.uses 4 is more than rule 'kubectl' allows: at most 3 uses"
    );
    assert_eq!(
        bad(for_(10, 0)),
        "approve_for_duration.uses 0 (unlimited) is more than rule 'kubectl' allows: at most 3 uses"
    );
    assert!(matches!(
        close_of(ok(&alice, &for_(10, 3), &r, &[])),
        Some(Close::Approve { uses: 3, .. })
    ));

    // Unlimited rule: 0 is fine, but the kernel holds at most 8 slots.
    let mut s = spec();
    s.max_grant_uses = 0;
    let r = request(s);
    assert!(judge(&alice, "cli", &for_(10, 8), &r, &[], t(60)).is_ok());
    assert!(judge(&alice, "cli", &for_(10, 0), &r, &[], t(60)).is_ok());
    let e = judge(&alice, "cli", &for_(10, 9), &r, &[], t(60)).expect_err("kernel");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.to_string().contains("at most 8 uses"), "{e:?}");
    // A spec above the kernel limit (not writable in a policy) still stops at 8.
    let mut s = spec();
    s.max_grant_uses = 20;
    let r = request(s);
    let e = judge(&alice, "cli", &for_(10, 9), &r, &[], t(60)).expect_err("kernel");
    assert!(e.to_string().contains("at most 8 uses"), "{e:?}");
}

#[test]
fn limits_are_checked_after_permissions() {
    // An outsider learns nothing about the rule's limits.
    let r = request(spec());
    let e = refused(
        &person("otto", &["web"], &[Role::Approver]),
        &for_(99, 99),
        &r,
        &[],
    );
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[test]
fn descriptions() {
    assert_eq!(describe(&Verdict::ApproveOnce), "approved once");
    assert_eq!(
        describe(&for_(90, 0)),
        "approved for 1h30m (unlimited uses)"
    );
    assert_eq!(describe(&for_(5, 1)), "approved for 5m (1 use)");
    assert_eq!(describe(&for_(5, 2)), "approved for 5m (2 uses)");
    assert_eq!(describe(&deny("why")), "denied (why)");
}
