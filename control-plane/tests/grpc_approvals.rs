//! The approval loop over gRPC: requests from uploads, decisions, N-of-M, separation of
//! duties, expiry, the host's decision stream.

mod grpc_support;

use std::time::Duration;

use countersign_api::pb;
use grpc_support::*;
use pb::decision_event::Event;
use tonic::Code;

#[tokio::test]
async fn approve_once_reaches_the_host_and_replays_idempotently() {
    let server = TestServer::start(Some(POLICY)).await;
    let id = raise(&server, 1, "kubectl", "/usr/bin/kubectl", "b1", "lena").await;
    let fp = &op_id("b1");
    assert!(id.starts_with("r-") && id.len() == 12, "{id}");

    // The host learns the request id at once.
    let opened = wait_event(
        &server,
        "",
        |e| matches!(&e.event, Some(Event::Opened(o)) if o.request_id == id),
    )
    .await;
    let Some(Event::Opened(o)) = &opened.event else {
        unreachable!()
    };
    assert_eq!(
        (
            o.agent_group.as_str(),
            o.session.as_str(),
            o.fingerprint.as_str(),
            o.rule.as_str()
        ),
        ("coding", "s1", fp.as_str(), "kubectl")
    );

    // A second attempt joins the same request.
    let mut agent = server.agent().await;
    agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![refused(2, "kubectl", "/usr/bin/kubectl", "b1", "lena")],
        })
        .await
        .expect("second attempt");
    let mut alice = server.approvals("alice").await;
    let r = alice
        .get_request(pb::GetRequestRequest {
            request_id: id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(r.attempts, 2);
    assert_eq!(r.state(), pb::RequestState::Pending);
    assert_eq!(
        (r.rule.as_str(), r.rule_description.as_str()),
        ("kubectl", "cluster changes")
    );
    assert_eq!(r.approver_groups, ["sre"]);
    assert_eq!(r.max_grant_uses, 3);
    assert_eq!(
        r.operation.as_ref().map(|o| o.launching_user.as_str()),
        Some("lena")
    );

    // Grant limits are checked.
    let e = alice
        .decide(approve_for(&id, Duration::from_secs(3600), 1))
        .await
        .expect_err("too long");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("at most 10m"), "{e:?}");
    let e = alice
        .decide(approve_for(&id, Duration::from_secs(60), 9))
        .await
        .expect_err("too many uses");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // Approve, then replay the same decision: the same record, nothing new.
    let first = alice
        .decide(approve_once(&id))
        .await
        .expect("approve")
        .into_inner();
    assert_eq!(first.decided_by, "alice");
    assert_eq!(first.grant_id.len(), 16, "{first:?}");
    let again = alice
        .decide(approve_once(&id))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(again, first);
    // Changing one's mind, or somebody else deciding late, is refused, naming who and when.
    let e = alice
        .decide(deny(&id, "oops"))
        .await
        .expect_err("changed mind");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("you already decided"), "{e:?}");
    let e = server
        .approvals("bob")
        .await
        .decide(deny(&id, "late"))
        .await
        .expect_err("late");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("already approved by alice at"),
        "{e:?}"
    );

    // The grant reaches the host, bound to the operation.
    let event = wait_event(&server, "", |e| matches!(&e.event, Some(Event::Grant(_)))).await;
    let Some(Event::Grant(g)) = &event.event else {
        unreachable!()
    };
    assert_eq!(g.grant_id, first.grant_id);
    assert_eq!(
        (
            g.request_id.as_str(),
            g.fingerprint.as_str(),
            g.session.as_str(),
            g.uses
        ),
        (id.as_str(), fp.as_str(), "s1", 1)
    );
    assert_eq!(g.approvers, ["alice"]);
    assert_eq!(g.ttl.as_ref().map(|d| d.seconds), Some(600));
    // Resuming after the grant's cursor does not send it again.
    let cursor = event.cursor.clone();
    assert!(cursor.parse::<u64>().is_ok(), "{cursor}");
    let mut resumed = server
        .agent()
        .await
        .decisions(pb::DecisionsRequest {
            cursor: cursor.clone(),
        })
        .await
        .expect("resume")
        .into_inner();
    let next = tokio::time::timeout(Duration::from_millis(1500), resumed.message()).await;
    assert!(next.is_err(), "nothing after the last cursor, got {next:?}");

    // Revocation by an approver of the rule.
    let rev = alice
        .revoke(pb::RevokeRequest {
            grant_id: first.grant_id.clone(),
            reason: "changed my mind".into(),
        })
        .await
        .expect("revoke")
        .into_inner();
    assert_eq!(rev.revoked_by, "alice");
    let event = wait_event(&server, &cursor, |e| {
        matches!(&e.event, Some(Event::Revocation(_)))
    })
    .await;
    let Some(Event::Revocation(r)) = &event.event else {
        unreachable!()
    };
    assert_eq!(r.grant_id, first.grant_id);
    let e = alice
        .revoke(pb::RevokeRequest {
            grant_id: first.grant_id.clone(),
            reason: "again".into(),
        })
        .await
        .expect_err("already revoked");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    server.stop().await;
}

#[tokio::test]
async fn launcher_cannot_approve_their_own_agent() {
    let server = TestServer::start(Some(POLICY)).await;
    let id = raise(
        &server,
        1,
        "kubectl",
        "/usr/bin/kubectl",
        "00000000000000c1",
        "lena",
    )
    .await;
    let mut lena = server.approvals("lena").await;
    let e = lena
        .decide(approve_once(&id))
        .await
        .expect_err("self-approval");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().starts_with("you launched this agent session"),
        "{e:?}"
    );
    // Her pending list does not offer it.
    let list = lena
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(list.requests.iter().all(|r| r.request_id != id));

    // A rule with allow_launcher lets her.
    let own = raise(
        &server,
        2,
        "own",
        "/usr/bin/own",
        "00000000000000c2",
        "lena",
    )
    .await;
    let d = lena
        .decide(approve_once(&own))
        .await
        .expect("allowed by the rule")
        .into_inner();
    assert!(!d.grant_id.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn two_of_n_then_grant() {
    let server = TestServer::start(Some(POLICY)).await;
    let db: std::net::IpAddr = "10.20.1.2".parse().expect("address");
    let fp = &agent_common::binding::Binding::connect(0, db, 5432, 6).id();
    let mut agent = server.agent().await;
    let mut event = refused(1, "prod-db", "/usr/bin/psql", "d1", "lena");
    event.kind = pb::OperationKind::Connect.into();
    if let Some(op) = event.operation.as_mut() {
        op.destination = Some(pb::Destination {
            address: "10.20.1.2".into(),
            port: 5432,
            protocol: "tcp".into(),
            family: "ipv4".into(),
        });
        op.fingerprint = fp.clone();
    }
    agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![event],
        })
        .await
        .expect("upload");
    let id = pending_id(&server, fp).await;

    let one = server
        .approvals("alice")
        .await
        .decide(approve_once(&id))
        .await
        .expect("1 of 2")
        .into_inner();
    assert!(one.grant_id.is_empty(), "not yet: {one:?}");
    // The same person twice is still one approval.
    server
        .approvals("alice")
        .await
        .decide(approve_once(&id))
        .await
        .expect("repeat");
    let r = server
        .approvals("carol")
        .await
        .get_request(pb::GetRequestRequest {
            request_id: id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (r.state(), r.decisions.len(), r.approvals_required),
        (pb::RequestState::Pending, 1, 2)
    );

    let two = server
        .approvals("carol")
        .await
        .decide(approve_once(&id))
        .await
        .expect("2 of 2")
        .into_inner();
    assert!(!two.grant_id.is_empty());
    let event = wait_event(&server, "", |e| matches!(&e.event, Some(Event::Grant(_)))).await;
    let Some(Event::Grant(g)) = &event.event else {
        unreachable!()
    };
    assert_eq!(g.approvers, ["alice", "carol"]);
    let r = server
        .approvals("carol")
        .await
        .get_request(pb::GetRequestRequest { request_id: id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(r.state(), pb::RequestState::Approved);
    assert_eq!(r.grant_id, two.grant_id);
    server.stop().await;
}

#[tokio::test]
async fn deny_closes_and_the_host_is_told() {
    let server = TestServer::start(Some(POLICY)).await;
    let id = raise(
        &server,
        1,
        "prod-db",
        "/usr/bin/psql",
        "00000000000000e1",
        "lena",
    )
    .await;
    server
        .approvals("alice")
        .await
        .decide(approve_once(&id))
        .await
        .expect("1 of 2");
    let e = server
        .approvals("carol")
        .await
        .decide(deny(&id, "   "))
        .await
        .expect_err("blank reason");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("deny.reason"), "{e:?}");
    server
        .approvals("carol")
        .await
        .decide(deny(&id, "not during the freeze"))
        .await
        .expect("deny");
    let event = wait_event(&server, "", |e| matches!(&e.event, Some(Event::Closed(_)))).await;
    let Some(Event::Closed(c)) = &event.event else {
        unreachable!()
    };
    assert_eq!(
        (
            c.request_id.as_str(),
            c.state(),
            c.decided_by.as_str(),
            c.reason.as_str()
        ),
        (
            id.as_str(),
            pb::RequestState::Denied,
            "carol",
            "not during the freeze"
        )
    );
    let e = server
        .approvals("bob")
        .await
        .decide(approve_once(&id))
        .await
        .expect_err("closed");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("already denied by carol"), "{e:?}");

    // A new attempt after the decision opens a new request.
    let again = raise(
        &server,
        2,
        "prod-db",
        "/usr/bin/psql",
        "00000000000000e1",
        "lena",
    )
    .await;
    assert_ne!(again, id);
    server.stop().await;
}

#[tokio::test]
async fn requests_expire() {
    let server = TestServer::start(Some(POLICY)).await;
    let id = raise(
        &server,
        1,
        "quick",
        "/usr/bin/quick",
        "00000000000000f1",
        "lena",
    )
    .await;
    let event = wait_event(&server, "", |e| matches!(&e.event, Some(Event::Closed(_)))).await;
    let Some(Event::Closed(c)) = &event.event else {
        unreachable!()
    };
    assert_eq!(
        (c.request_id.as_str(), c.state(), c.decided_by.as_str()),
        (id.as_str(), pb::RequestState::Expired, "")
    );
    let e = server
        .approvals("alice")
        .await
        .decide(approve_once(&id))
        .await
        .expect_err("expired");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("expired at"), "{e:?}");
    let r = server
        .approvals("alice")
        .await
        .get_request(pb::GetRequestRequest { request_id: id })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(r.state(), pb::RequestState::Expired);
    server.stop().await;
}

#[tokio::test]
async fn unknown_rules_get_the_default_approvers() {
    // No policy at all: the people file's default_approvers (security) decide; nobody of
    // the test people is in it, so nobody sees the request pending.
    let server = TestServer::start(None).await;
    let mut agent = server.agent().await;
    agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![refused(
                1,
                "kubectl",
                "/usr/bin/kubectl",
                "0000000000000a01",
                "lena",
            )],
        })
        .await
        .expect("upload");
    let event = wait_event(&server, "", |e| matches!(&e.event, Some(Event::Opened(_)))).await;
    let Some(Event::Opened(o)) = &event.event else {
        unreachable!()
    };
    let r = server
        .approvals("alice")
        .await
        .get_request(pb::GetRequestRequest {
            request_id: o.request_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(r.approver_groups, ["security"]);
    assert_eq!((r.approvals_required, r.max_grant_uses), (1, 1));
    assert_eq!(r.max_grant_ttl.as_ref().map(|d| d.seconds), Some(600));
    let e = server
        .approvals("alice")
        .await
        .decide(approve_once(&o.request_id))
        .await
        .expect_err("not security");
    assert_eq!(e.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn forward_request_asks_ahead() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut agent = server.agent().await;
    let ask = pb::ForwardRequestRequest {
        operation: Some(operation("/usr/bin/kubectl", "b01", "lena")),
        rule: "kubectl".into(),
        time: None,
        attempts: 0,
        reason: "need to restart the stuck pod".into(),
    };
    let first = agent
        .forward_request(ask.clone())
        .await
        .expect("forward")
        .into_inner();
    let second = agent
        .forward_request(ask)
        .await
        .expect("forward again")
        .into_inner();
    assert_eq!(first.request_id, second.request_id);
    let r = server
        .approvals("alice")
        .await
        .get_request(pb::GetRequestRequest {
            request_id: first.request_id,
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(r.reason, "need to restart the stuck pod");
    assert_eq!(r.attempts, 0);
    server.stop().await;
}

/// An agent that tries one distinct operation after another opens at most
/// `RequestCaps::DEFAULT.per_session` requests (and chat cards) at once: asking ahead for one
/// more is refused with a clear error, a kernel refusal of one more is stored and audited with
/// the flag `not_approvable_flood` but opens nothing, attempts of an operation that has its
/// request still join it, and another session is not held up.
#[tokio::test]
async fn a_request_flood_stops_at_the_cap_per_session() {
    let server = TestServer::start(Some(POLICY)).await;
    let mut agent = server.agent().await;
    let cap = control_plane::store::RequestCaps::DEFAULT.per_session;
    let ask = |label: String, session: &str| {
        let mut op = operation("/usr/bin/kubectl", &label, "lena");
        op.session = session.into();
        op.cgroup = format!("/agents/coding/{session}");
        pb::ForwardRequestRequest {
            operation: Some(op),
            rule: "kubectl".into(),
            time: None,
            attempts: 0,
            reason: String::new(),
        }
    };
    for i in 0..cap {
        agent
            .forward_request(ask(format!("f{i}"), "s1"))
            .await
            .unwrap_or_else(|e| panic!("request {i} of {cap}: {e}"));
    }
    let over = agent
        .forward_request(ask("one-more".into(), "s1"))
        .await
        .expect_err("over the cap");
    assert_eq!(over.code(), Code::ResourceExhausted, "{over}");
    assert!(
        over.message().contains("s1") && over.message().contains("open approval requests"),
        "{over}"
    );
    // The same operation again joins its request; another session opens its own.
    agent
        .forward_request(ask("f0".into(), "s1"))
        .await
        .expect("joins");
    agent
        .forward_request(ask("elsewhere".into(), "s2"))
        .await
        .expect("another session");
    // A kernel refusal over the cap: stored, audited, flagged, no request.
    let ack = agent
        .upload_events(pb::UploadEventsRequest {
            events: vec![refused(
                1,
                "kubectl",
                "/usr/bin/kubectl",
                "kernel-more",
                "lena",
            )],
        })
        .await
        .expect("upload is never stalled by the cap")
        .into_inner();
    assert_eq!(ack.acked_sequence, 1);
    let pending = server
        .approvals("alice")
        .await
        .list_pending(pb::ListPendingRequest::default())
        .await
        .expect("list pending")
        .into_inner()
        .requests;
    assert_eq!(pending.len() as u32, cap + 1, "s1's cap and s2's one");
    // The refusal over the cap is counted on s1's newest open request: its approvers see
    // the flood behind it.
    let counted: Vec<&pb::ApprovalRequest> = pending.iter().filter(|r| r.over_cap > 0).collect();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].over_cap, 1);
    assert_eq!(
        counted[0].operation.as_ref().map(|o| o.session.as_str()),
        Some("s1")
    );
    let trail = export_audit(&server).await;
    let flagged = trail
        .lines()
        .find(|l| l.contains("kernel-more"))
        .unwrap_or_else(|| panic!("the refusal is in the trail:\n{trail}"));
    assert!(flagged.contains("not_approvable_flood"), "{flagged}");
    server.stop().await;
}
