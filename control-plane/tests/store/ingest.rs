//! Migrations, registration, idempotent ingest and the contiguous acknowledgement.

use control_plane::store::{Ingest, StoreError};
use countersign_api::pb;

use crate::db::Db;
use crate::on_both;
use crate::support::{audit_count, plain, t0};

on_both!(migrations_are_idempotent);
async fn migrations_are_idempotent(db: &Db) {
    let store = db.open().await;
    assert_eq!(
        store.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4, 5]
    );
    store.close().await;
    // Reopening (a restart, or a second replica) applies nothing twice.
    let again = db.open().await;
    let other = db.open_as("cs-2").await;
    assert_eq!(
        again.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        other.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4, 5]
    );
    again.close().await;
    other.close().await;

    // A database of the previous release (version 1 only) is brought up to date on open.
    let mut raw = db.raw().await;
    for statement in [
        "DROP TABLE chat_links",
        "DROP TABLE chat_messages",
        "DROP TABLE chat_replays",
        "DROP TABLE session_counters",
        "ALTER TABLE requests DROP COLUMN over_cap",
        "DELETE FROM schema_migrations WHERE version = 2",
        "DELETE FROM schema_migrations WHERE version = 3",
        "DELETE FROM schema_migrations WHERE version = 4",
        "DELETE FROM schema_migrations WHERE version = 5",
    ] {
        sqlx::query(statement)
            .execute(&mut raw)
            .await
            .expect(statement);
    }
    let upgraded = db.open().await;
    assert_eq!(
        upgraded.schema_versions().await.expect("versions"),
        vec![1, 2, 3, 4, 5]
    );
    assert!(upgraded
        .chat_links(None)
        .await
        .expect("chat tables")
        .is_empty());
}

on_both!(ingest_is_idempotent_and_acks_contiguously);
async fn ingest_is_idempotent_and_acks_contiguously(db: &Db) {
    let store = db.open().await;
    let reg = pb::RegisterRequest {
        agent_version: "0.1.0".into(),
        kernel: "6.1.0".into(),
        mode: pb::EnforcementMode::Lsm.into(),
        agent_groups: vec!["coding".into()],
        ..Default::default()
    };
    assert_eq!(
        store
            .register_host("build-01", &reg, t0())
            .await
            .expect("register"),
        0
    );

    let batch = |seqs: &[u64]| -> Vec<Ingest> { seqs.iter().map(|s| plain(*s)).collect() };
    let out = store
        .ingest("build-01", batch(&[1, 2, 3, 4, 5]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (5, 5));

    // A retried upload (its answer was lost) stores nothing twice.
    let out = store
        .ingest("build-01", batch(&[1, 2, 3, 4, 5]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (5, 0));

    // A gap: stored, but not acknowledged until it is filled.
    let out = store
        .ingest("build-01", batch(&[7, 8]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (5, 2));
    let out = store
        .ingest("build-01", batch(&[6]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (8, 1));

    // Duplicates inside a batch and across batches; out of order within a batch.
    let out = store
        .ingest("build-01", batch(&[10, 9, 8, 9]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (10, 2));

    // Another host has its own sequence space.
    let out = store
        .ingest("build-02", batch(&[1, 2]), t0())
        .await
        .expect("ingest");
    assert_eq!((out.acked, out.stored), (2, 2));

    assert!(matches!(
        store.ingest("build-01", batch(&[0]), t0()).await,
        Err(StoreError::Invalid(_))
    ));

    // The daemon resumes after what is acknowledged.
    assert_eq!(
        store
            .register_host("build-01", &reg, t0())
            .await
            .expect("register"),
        10
    );
    assert_eq!(audit_count(&store, "attempt").await, 12);
    assert_eq!(audit_count(&store, "login").await, 2);
    let login = store
        .audit_records(None, 1)
        .await
        .expect("records")
        .pop()
        .expect("first record");
    assert_eq!(login.actor.id, "build-01");
    assert_eq!(login.subject.details["kernel"], "6.1.0");
}

/// `sqlite::memory:` (handy for tools and examples) works despite one database per
/// connection: the store keeps a single connection for it.
#[tokio::test]
async fn in_memory_sqlite() {
    let interval = std::num::NonZeroU64::new(10).expect("non-zero");
    let store =
        control_plane::store::Store::open("sqlite::memory:", crate::db::key(), interval, "m")
            .await
            .expect("open");
    let out = store
        .ingest("h", (1..=3).map(plain).collect(), t0())
        .await
        .expect("ingest");
    assert_eq!(out.acked, 3);
    assert_eq!(store.audit_verify().await.expect("verifies").records, 3);
}
