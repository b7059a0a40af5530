//! The stored audit chain: verifies after a busy story, survives restarts and concurrent
//! replicas, and a tampered row is caught (and never continued).

use control_plane::audit::{Actor, ActorKind, ChainError, Entry, Kind, Subject, VerifyError};
use control_plane::store::{AuditError, StoreError, Verdict};
use sqlx::Executor as _;

use crate::db::{Db, INTERVAL};
use crate::on_both;
use crate::support::{judge, plain, refusal, spec, t0};

fn login(person: &str) -> Entry {
    Entry {
        kind: Kind::Login,
        actor: Actor {
            kind: ActorKind::Person,
            id: person.into(),
            channel: Some("cli".into()),
        },
        subject: Subject::default(),
    }
}

on_both!(chain_verifies_and_continues_after_reopen);
async fn chain_verifies_and_continues_after_reopen(db: &Db) {
    let store = db.open().await;
    let s = spec(1);
    let batch = (1..=20)
        .map(|seq| {
            if seq % 4 == 0 {
                refusal(seq, "s-1", &s)
            } else {
                plain(seq)
            }
        })
        .collect();
    let out = store.ingest("build-01", batch, t0()).await.expect("ingest");
    let id = out.opened[0].id.clone();
    store
        .decide(&id, t0(), judge("alice", Verdict::ApproveOnce))
        .await
        .expect("approve");
    store
        .put_policy("version: 1\n", "erin", "", "", t0())
        .await
        .expect("policy");
    let rec = store
        .audit_append(login("alice"), t0())
        .await
        .expect("append");
    assert_eq!(rec.kind, Kind::Login);

    let summary = store.audit_verify().await.expect("verifies");
    let count = store.audit_records(None, 0).await.expect("records").len() as u64;
    assert_eq!(summary.records, count);
    assert!(summary.checkpoints >= count / (INTERVAL + 1), "{summary:?}");

    // An explicit checkpoint signs the head (asked for, it is written even right after
    // another one: an export ends with it).
    store.audit_checkpoint(t0()).await.expect("checkpoint");
    store.audit_checkpoint(t0()).await.expect("checkpoint");
    let summary = store.audit_verify().await.expect("verifies");
    assert_eq!(summary.unsigned_tail, 1, "only the checkpoint itself");
    assert_eq!(summary.records, count + 2);
    store.close().await;

    // A restarted server continues the same chain.
    let reopened = db.open().await;
    let next = reopened
        .audit_append(login("bob"), t0())
        .await
        .expect("append");
    assert_eq!(next.seq, summary.last_seq + 1);
    assert_eq!(next.prev, summary.head);
    let summary = reopened.audit_verify().await.expect("verifies");
    assert_eq!(summary.last_seq, next.seq);
    let page = reopened
        .audit_records(Some(next.seq - 2), 10)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [next.seq - 1, next.seq]
    );
}

on_both!(empty_chain);
async fn empty_chain(db: &Db) {
    let store = db.open().await;
    assert!(matches!(
        store.audit_checkpoint(t0()).await,
        Err(StoreError::Audit(AuditError::Chain(ChainError::Empty)))
    ));
    assert!(matches!(
        store.audit_verify().await,
        Err(StoreError::Audit(AuditError::Verify(VerifyError::Empty)))
    ));
    assert!(store
        .audit_records(None, 10)
        .await
        .expect("records")
        .is_empty());
}

on_both!(replicas_share_one_chain);
async fn replicas_share_one_chain(db: &Db) {
    let a = db.open_as("cs-a").await;
    let b = db.open_as("cs-b").await;
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let host = format!("host-{i}");
            for n in 0..10u64 {
                let batch = (n * 5 + 1..=n * 5 + 5).map(plain).collect();
                store.ingest(&host, batch, t0()).await.expect("ingest");
                store
                    .audit_append(login("alice"), t0())
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let summary = a.audit_verify().await.expect("one valid chain");
    // 4 writers x 10 rounds x (5 attempts + 1 login), plus checkpoints.
    assert_eq!(summary.records - summary.checkpoints, 240);
    assert_eq!(
        b.audit_verify().await.expect("same chain").head,
        summary.head
    );
}

on_both!(tampering_is_detected_and_not_continued);
async fn tampering_is_detected_and_not_continued(db: &Db) {
    let store = db.open().await;
    store
        .ingest("build-01", (1..=8).map(plain).collect(), t0())
        .await
        .expect("ingest");
    let mut raw = db.raw().await;
    // Edit the first attempt's argv without re-hashing.
    let row: (String,) = sqlx::query_as("SELECT record FROM audit_records WHERE seq = 2")
        .fetch_one(&mut raw)
        .await
        .expect("row");
    let edited = row.0.replace("delete", "describe");
    assert_ne!(edited, row.0);
    sqlx::query("UPDATE audit_records SET record = $1 WHERE seq = 2")
        .bind(&edited)
        .execute(&mut raw)
        .await
        .expect("tamper");
    match store.audit_verify().await {
        Err(StoreError::Audit(AuditError::Verify(e @ VerifyError::HashMismatch { .. }))) => {
            assert_eq!(e.seq(), Some(2));
        }
        other => panic!("expected a hash mismatch at seq 2, got {other:?}"),
    }

    // The head record edited: a writer refuses to chain onto it (after a restart, when it
    // reloads the head from the database).
    let last: (i64,) = sqlx::query_as("SELECT MAX(seq) FROM audit_records")
        .fetch_one(&mut raw)
        .await
        .expect("max");
    let sql = format!(
        "UPDATE audit_records SET record = REPLACE(record, 'lsm', 'xxx') WHERE seq = {}",
        last.0
    );
    raw.execute(sql.as_str()).await.expect("tamper head");
    store.close().await;
    let interval = std::num::NonZeroU64::new(INTERVAL).expect("non-zero");
    let reopened =
        control_plane::store::Store::open(&db.url, crate::db::key(), interval, "cs-test").await;
    assert!(
        matches!(reopened, Err(StoreError::Audit(_))),
        "a store on a tampered head must not open: {:?}",
        reopened.map(|_| ())
    );
}
