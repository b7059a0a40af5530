//! Decisions: N-of-M with concurrent approvers, deny, idempotent repeat.

use std::time::Duration;

use control_plane::store::{Close, Judgement, RequestState, StoreError, Verdict};
use countersign_api::pb;

use crate::db::Db;
use crate::on_both;
use crate::support::{audit_count, judge, refusal, spec, stream_kinds, t0};

const HOST: &str = "build-01";

on_both!(n_of_m_with_concurrent_decisions_grants_once);
async fn n_of_m_with_concurrent_decisions_grants_once(db: &Db) {
    let store = db.open().await;
    let out = store
        .ingest(HOST, vec![refusal(1, "s-1", &spec(2))], t0())
        .await
        .expect("ingest");
    let id = out.opened[0].id.clone();

    let first = store
        .decide(&id, t0(), judge("alice", Verdict::ApproveOnce))
        .await
        .expect("alice");
    assert!(first.grant.is_none() && !first.repeated);
    assert_eq!(first.request.state, RequestState::Pending);

    // Alice again, same verdict: the existing decision, nothing written.
    let records = store
        .audit_records(None, 1000)
        .await
        .expect("records")
        .len();
    let again = store
        .decide(&id, t0(), judge("alice", Verdict::ApproveOnce))
        .await
        .expect("repeat");
    assert!(again.repeated);
    assert_eq!(again.decision, first.decision);
    assert_eq!(
        store
            .audit_records(None, 1000)
            .await
            .expect("records")
            .len(),
        records
    );

    // Bob and Carol at the same moment: the second approval completes it, exactly once.
    let (b, c) = tokio::join!(
        tokio::spawn({
            let store = store.clone();
            let id = id.clone();
            async move {
                store
                    .decide(&id, t0(), judge("bob", Verdict::ApproveOnce))
                    .await
            }
        }),
        tokio::spawn({
            let store = store.clone();
            let id = id.clone();
            async move {
                store
                    .decide(&id, t0(), judge("carol", Verdict::ApproveOnce))
                    .await
            }
        }),
    );
    let results = [b.expect("join"), c.expect("join")];
    let granted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        granted.len(),
        1,
        "exactly one decision completes the request"
    );
    let loser = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("one refused");
    assert!(
        matches!(loser, StoreError::Refused(r) if r.code() == tonic::Code::FailedPrecondition),
        "{loser:?}"
    );
    let decided = granted[0];
    let grant = decided.grant.clone().expect("grant");
    assert_eq!(decided.request.state, RequestState::Approved);
    assert_eq!(
        decided.request.grant_id.as_deref(),
        Some(grant.grant_id.as_str())
    );
    assert_eq!(
        decided.decision.grant_id.as_deref(),
        Some(grant.grant_id.as_str())
    );
    assert_eq!(grant.grant_id.len(), 16);
    assert_ne!(u64::from_str_radix(&grant.grant_id, 16).expect("hex"), 0);
    assert_eq!((grant.uses, grant.ttl), (1, Duration::from_secs(600)));
    assert_eq!(grant.approvers.len(), 2);
    assert_eq!(grant.approvers[0], "alice");
    assert_eq!(
        store.get_grant(&grant.grant_id).await.expect("get"),
        Some(grant.clone())
    );
    assert_eq!(store.decisions_of(&id).await.expect("decisions").len(), 2);

    // A judge that records a closing decision on a closed request writes nothing.
    let rogue = |_: &_, _: &[_]| {
        Ok(Judgement::Record {
            decided_by: "mallory".into(),
            channel: "api".into(),
            verdict: Verdict::ApproveOnce,
            close: Some(Close::Approve {
                uses: 1,
                ttl: Duration::from_secs(60),
                approvers: vec!["mallory".into()],
            }),
        })
    };
    assert!(matches!(
        store.decide(&id, t0(), rogue).await,
        Err(StoreError::Precondition(m)) if m.contains("already approved")
    ));
    assert_eq!(store.decisions_of(&id).await.expect("decisions").len(), 2);
    assert!(matches!(
        store
            .decide("r-0000000000", t0(), judge("bob", Verdict::ApproveOnce))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // The first approval (1 of 2) re-announces the pending request (the chats show the
    // progress); the second closes it with the grant.
    assert_eq!(
        stream_kinds(&store, HOST).await,
        ["opened:1", "opened:1", "grant"]
    );
    let events = store.decision_events(HOST, 0, 10).await.expect("events");
    let after = store
        .decision_events(HOST, events[1].cursor.parse().expect("cursor"), 10)
        .await
        .expect("resume");
    assert_eq!(after.len(), 1, "resume after a cursor");
    match &after[0].event {
        Some(pb::decision_event::Event::Grant(g)) => {
            assert_eq!(g.grant_id, grant.grant_id);
            assert_eq!(
                (g.agent_group.as_str(), g.session.as_str()),
                ("coding", "s-1")
            );
        }
        other => panic!("expected a grant, got {other:?}"),
    }
    assert_eq!(audit_count(&store, "decision").await, 2);
    assert_eq!(audit_count(&store, "grant").await, 1);
}

on_both!(deny_closes_the_request);
async fn deny_closes_the_request(db: &Db) {
    let store = db.open().await;
    let mut wake = store.subscribe();
    let out = store
        .ingest(HOST, vec![refusal(1, "s-1", &spec(2))], t0())
        .await
        .expect("ingest");
    assert_eq!(wake.try_recv().expect("woken after commit"), HOST);
    let id = out.opened[0].id.clone();
    let verdict = Verdict::Deny {
        reason: "not in prod".into(),
    };
    let denied = store
        .decide(&id, t0(), judge("alice", verdict))
        .await
        .expect("deny");
    assert_eq!(denied.request.state, RequestState::Denied);
    assert!(denied.grant.is_none());
    assert_eq!(wake.try_recv().expect("woken"), HOST);
    let events = store.decision_events(HOST, 0, 10).await.expect("events");
    match &events[1].event {
        Some(pb::decision_event::Event::Closed(c)) => {
            assert_eq!(c.state(), pb::RequestState::Denied);
            assert_eq!(
                (c.decided_by.as_str(), c.reason.as_str()),
                ("alice", "not in prod")
            );
            assert_eq!(c.request_id, id);
        }
        other => panic!("expected closed, got {other:?}"),
    }
    let stored = store.get_request(&id).await.expect("get").expect("exists");
    assert_eq!(stored.state, RequestState::Denied);
    let records = store.audit_records(None, 100).await.expect("records");
    let decision = records
        .iter()
        .find(|r| r.kind.as_str() == "decision")
        .expect("decision");
    assert_eq!(decision.subject.decision.as_deref(), Some("denied"));
    assert_eq!(decision.subject.reason.as_deref(), Some("not in prod"));
    assert_eq!(decision.actor.channel.as_deref(), Some("cli"));
}
