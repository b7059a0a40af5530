//! Requests opened and joined by events and by asking ahead; never reopened once closed.

use std::time::Duration;

use control_plane::store::{RequestFilter, RequestState, Verdict};

use crate::db::Db;
use crate::on_both;
use crate::support::{audit_count, judge, op, refusal, spec, stream_kinds, t0};

const HOST: &str = "build-01";

on_both!(requests_open_join_and_never_reopen);
async fn requests_open_join_and_never_reopen(db: &Db) {
    let store = db.open().await;
    let s = spec(1);
    let out = store
        .ingest(HOST, vec![refusal(1, "s-1", &s)], t0())
        .await
        .expect("ingest");
    assert_eq!(out.opened.len(), 1);
    let first = out.opened[0].clone();
    assert!(
        first.id.starts_with("r-") && first.id.len() == 12,
        "{}",
        first.id
    );
    assert_eq!((first.attempts, first.state), (1, RequestState::Pending));
    assert_eq!(first.launching_user, "dave");
    assert_eq!(first.kind, "exec");
    assert_eq!(first.expires_at, t0() + Duration::from_secs(3600));

    // Two more attempts in one batch join it.
    let later = t0() + Duration::from_secs(5);
    let out = store
        .ingest(
            HOST,
            vec![refusal(2, "s-1", &s), refusal(3, "s-1", &s)],
            later,
        )
        .await
        .expect("ingest");
    assert!(out.opened.is_empty());
    assert_eq!(out.joined.len(), 1);
    assert_eq!(
        (out.joined[0].id.as_str(), out.joined[0].attempts),
        (first.id.as_str(), 3)
    );

    // Asking ahead for the same operation joins too, attempts unchanged, reason kept.
    let asked = store
        .forward(
            HOST,
            &op("s-1", "9a3f00112233aabb"),
            &s,
            "need to clean up",
            later,
        )
        .await
        .expect("forward");
    assert_eq!((asked.id.as_str(), asked.attempts), (first.id.as_str(), 3));
    assert_eq!(asked.reason, "need to clean up");

    // Another session is another request.
    let other = store
        .forward(HOST, &op("s-2", "9a3f00112233aabb"), &s, "", later)
        .await
        .expect("forward");
    assert_ne!(other.id, first.id);
    assert_eq!(other.attempts, 0);

    // Decided: the next attempt opens a new request.
    store
        .decide(
            &first.id,
            later,
            judge(
                "alice",
                Verdict::Deny {
                    reason: "no".into(),
                },
            ),
        )
        .await
        .expect("deny");
    let out = store
        .ingest(HOST, vec![refusal(4, "s-1", &s)], later)
        .await
        .expect("ingest");
    assert_eq!(out.opened.len(), 1);
    assert_ne!(out.opened[0].id, first.id);

    let pending = RequestFilter {
        state: Some(RequestState::Pending),
        host: Some(HOST.into()),
        ..RequestFilter::default()
    };
    let listed = store.list_requests(&pending).await.expect("list");
    assert_eq!(listed.len(), 2);
    let page = store
        .list_requests(&RequestFilter {
            limit: 1,
            ..pending.clone()
        })
        .await
        .expect("page 1");
    let rest = store
        .list_requests(&RequestFilter {
            after_id: Some(page[0].id.clone()),
            ..pending
        })
        .await
        .expect("page 2");
    assert_eq!([page, rest].concat(), listed);

    assert_eq!(
        stream_kinds(&store, HOST).await,
        [
            "opened:1",
            "opened:3",
            "opened:3",
            "opened:0",
            "closed:REQUEST_STATE_DENIED",
            "opened:1"
        ]
    );
    assert_eq!(audit_count(&store, "request").await, 3);
    let attempts = store.audit_records(None, 100).await.expect("records");
    let linked = attempts
        .iter()
        .filter(|r| r.kind.as_str() == "attempt")
        .filter(|r| r.subject.request_id.as_deref() == Some(first.id.as_str()))
        .count();
    assert_eq!(linked, 3, "attempts carry the request id");
}
