//! Pending requests that nobody decided in time.

use std::time::Duration;

use control_plane::store::{RequestState, StoreError, Verdict};

use crate::db::Db;
use crate::on_both;
use crate::support::{judge, op, refusal, spec, stream_kinds, t0};

const HOST: &str = "build-01";

on_both!(pending_requests_expire);
async fn pending_requests_expire(db: &Db) {
    let store = db.open().await;
    let mut s = spec(1);
    s.expires_in = Duration::from_secs(60);
    let out = store
        .ingest(HOST, vec![refusal(1, "s-1", &s)], t0())
        .await
        .expect("ingest");
    let id = out.opened[0].id.clone();
    let other = store
        .forward(
            HOST,
            &op("s-2", "00000000000000bb"),
            &spec(1),
            "later",
            t0(),
        )
        .await
        .expect("forward");

    assert!(store
        .expire_due(t0() + Duration::from_secs(59))
        .await
        .expect("expire")
        .is_empty());
    let late = t0() + Duration::from_secs(61);
    // Deciding after the time is up, before the sweeper ran: refused, nothing written.
    let too_late = store
        .decide(&id, late, judge("alice", Verdict::ApproveOnce))
        .await;
    assert!(
        matches!(&too_late, Err(StoreError::Precondition(m)) if m.contains("expired at")),
        "{too_late:?}"
    );
    let expired = store.expire_due(late).await.expect("expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].id.as_str(), expired[0].state),
        (id.as_str(), RequestState::Expired)
    );
    assert_eq!(
        store
            .get_request(&other.id)
            .await
            .expect("get")
            .expect("exists")
            .state,
        RequestState::Pending
    );
    let records = store.audit_records(None, 100).await.expect("records");
    let expiry = records
        .iter()
        .find(|r| r.subject.decision.as_deref() == Some("expired"))
        .expect("expiry record");
    assert_eq!(expiry.actor.id, "cs-test");
    assert_eq!(expiry.actor.kind.as_str(), "server");

    // A new attempt opens a new request; an unswept expired one is expired on the way.
    let out = store
        .ingest(HOST, vec![refusal(2, "s-1", &s)], late)
        .await
        .expect("ingest");
    let second = out.opened[0].id.clone();
    assert_ne!(second, id);
    let later = late + Duration::from_secs(61);
    let out = store
        .ingest(HOST, vec![refusal(3, "s-1", &s)], later)
        .await
        .expect("ingest");
    assert_ne!(out.opened[0].id, second);
    assert_eq!(
        store
            .get_request(&second)
            .await
            .expect("get")
            .expect("exists")
            .state,
        RequestState::Expired
    );
    assert_eq!(
        stream_kinds(&store, HOST).await,
        [
            "opened:1",
            "opened:0",
            "closed:REQUEST_STATE_EXPIRED",
            "opened:1",
            "closed:REQUEST_STATE_EXPIRED",
            "opened:1"
        ]
    );
}
