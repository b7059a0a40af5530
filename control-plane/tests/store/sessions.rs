//! Per-session kernel counters: the latest counts kept, every increase of missing events
//! audited once, a kernel that began counting again not mistaken for a decrease.

use std::time::Duration;

use countersign_api::pb;

use crate::db::Db;
use crate::on_both;
use crate::support::t0;

fn counters(session: &str, id: u64, lost: u64, limited: u64) -> pb::SessionCounters {
    pb::SessionCounters {
        agent_group: "coding".into(),
        session: session.into(),
        cgroup_id: id,
        refused: 100,
        granted: 1,
        events_lost: lost,
        events_limited: limited,
    }
}

/// (session, events_lost, events_limited) of each `events_missing` record, in order.
async fn missing(store: &control_plane::store::Store) -> Vec<(String, u64, u64)> {
    store
        .audit_records(None, 10_000)
        .await
        .expect("records")
        .iter()
        .filter(|r| r.kind.as_str() == "events_missing")
        .map(|r| {
            let d = &r.subject.details;
            (
                r.subject.session.clone().unwrap_or_default(),
                d["events_lost"].as_u64().unwrap_or(u64::MAX),
                d["events_limited"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

on_both!(missing_events_are_audited_once_per_increase);
async fn missing_events_are_audited_once_per_increase(db: &Db) {
    let store = db.open().await;
    let at = |s: u64| t0() + Duration::from_secs(s);
    let report = |sessions: Vec<pb::SessionCounters>, s: u64| {
        let store = &store;
        async move {
            store
                .report_sessions("web-01", &sessions, at(s))
                .await
                .expect("report")
        }
    };
    // Nothing missing: counts kept, nothing audited.
    assert!(report(vec![counters("s1", 7, 0, 0)], 0).await.is_empty());
    assert_eq!(missing(&store).await, []);
    // A flood: 40 lost and 900 over the rate in s1; s2 clean.
    let found = report(vec![counters("s1", 7, 40, 900), counters("s2", 8, 0, 0)], 1).await;
    assert_eq!(found.len(), 1);
    assert_eq!(missing(&store).await, [("s1".to_owned(), 40, 900)]);
    // The same counts again (a reconnected daemon re-sends everything): no new record.
    assert!(report(vec![counters("s1", 7, 40, 900)], 2).await.is_empty());
    // More lost: only the increase is recorded.
    report(vec![counters("s1", 7, 45, 900)], 3).await;
    // The kernel forgot s1 and began again: its new counts are all new.
    report(vec![counters("s1", 7, 2, 0)], 4).await;
    // Another session under a reused cgroup id starts from zero too.
    report(vec![counters("s3", 7, 1, 3)], 5).await;
    assert_eq!(
        missing(&store).await,
        [
            ("s1".to_owned(), 40, 900),
            ("s1".to_owned(), 5, 0),
            ("s1".to_owned(), 2, 0),
            ("s3".to_owned(), 1, 3),
        ]
    );
    // Another host's sessions are its own.
    assert_eq!(
        store
            .report_sessions("web-02", &[counters("s1", 7, 40, 900)], at(6))
            .await
            .expect("report")
            .len(),
        1
    );
    store.close().await;
}
