//! Grant uses reported by hosts, and revocation.

use std::time::Duration;

use control_plane::store::{StoreError, Verdict};

use crate::db::Db;
use crate::on_both;
use crate::support::{event, judge, op, refusal, spec, stream_kinds, t0};

const HOST: &str = "build-01";

on_both!(revoke_and_grant_uses);
async fn revoke_and_grant_uses(db: &Db) {
    let store = db.open().await;
    let s = spec(1);
    let out = store
        .ingest(HOST, vec![refusal(1, "s-1", &s)], t0())
        .await
        .expect("ingest");
    let for_a_while = Verdict::ApproveFor {
        duration: Duration::from_secs(300),
        uses: 2,
    };
    let decided = store
        .decide(&out.opened[0].id, t0(), judge("alice", for_a_while))
        .await
        .expect("approve");
    let grant = decided.grant.expect("grant");
    assert_eq!((grant.uses, grant.ttl), (2, Duration::from_secs(300)));

    // The kernel let the operation through with the grant: a grant_use linked to it.
    let mut used = event(2, "approve", "granted", op("s-1", "9a3f00112233aabb"));
    used.grant_id = grant.grant_id.clone();
    let ingest = control_plane::store::Ingest {
        event: used,
        request: Some(s.clone()),
    };
    let out = store
        .ingest(HOST, vec![ingest], t0())
        .await
        .expect("ingest");
    assert!(out.opened.is_empty() && out.joined.is_empty());
    let g = store
        .get_grant(&grant.grant_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(g.uses_consumed, 1);
    let records = store.audit_records(None, 100).await.expect("records");
    let usage = records
        .iter()
        .find(|r| r.kind.as_str() == "grant_use")
        .expect("grant_use");
    assert_eq!(
        usage.subject.grant_id.as_deref(),
        Some(grant.grant_id.as_str())
    );
    assert_eq!(
        usage.subject.request_id.as_deref(),
        Some(grant.request_id.as_str())
    );

    // Expired: cannot be revoked.
    let after_expiry = t0() + Duration::from_secs(301);
    assert!(matches!(
        store.revoke(&grant.grant_id, "bob", "oops", after_expiry).await,
        Err(StoreError::Precondition(m)) if m.contains("expired")
    ));
    let rev = store
        .revoke(&grant.grant_id, "bob", "wrong pod", t0())
        .await
        .expect("revoke");
    assert_eq!(
        (rev.revoked_by.as_str(), rev.reason.as_str()),
        ("bob", "wrong pod")
    );
    assert!(
        store
            .get_grant(&grant.grant_id)
            .await
            .expect("get")
            .expect("exists")
            .revoked
    );
    assert!(matches!(
        store.revoke(&grant.grant_id, "bob", "again", t0()).await,
        Err(StoreError::Precondition(m)) if m.contains("already revoked")
    ));
    assert!(matches!(
        store.revoke("00000000000000ff", "bob", "?", t0()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        stream_kinds(&store, HOST).await,
        ["opened:1", "grant", "revocation"]
    );
    let records = store.audit_records(None, 100).await.expect("records");
    assert!(records
        .iter()
        .any(|r| r.subject.decision.as_deref() == Some("revoked") && r.actor.id == "bob"));

    // Used up: a one-use grant after its use cannot be revoked.
    let out = store
        .ingest(HOST, vec![refusal(3, "s-9", &s)], t0())
        .await
        .expect("ingest");
    let once = store
        .decide(
            &out.opened[0].id,
            t0(),
            judge("alice", Verdict::ApproveOnce),
        )
        .await
        .expect("approve")
        .grant
        .expect("grant");
    let mut used = event(4, "approve", "granted", op("s-9", "9a3f00112233aabb"));
    used.grant_id = once.grant_id.clone();
    store
        .ingest(
            HOST,
            vec![control_plane::store::Ingest {
                event: used,
                request: None,
            }],
            t0(),
        )
        .await
        .expect("ingest");
    assert!(matches!(
        store.revoke(&once.grant_id, "bob", "late", t0()).await,
        Err(StoreError::Precondition(m)) if m.contains("used up")
    ));
    let status: tonic::Status = StoreError::Precondition("x".into()).into();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
}
