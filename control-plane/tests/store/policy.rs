//! Policy revisions with optimistic concurrency.

use std::time::Duration;

use control_plane::store::StoreError;

use crate::db::Db;
use crate::on_both;
use crate::support::{audit_count, t0};

on_both!(policy_put_conflict_history);
async fn policy_put_conflict_history(db: &Db) {
    let store = db.open().await;
    assert_eq!(store.current_policy().await.expect("current"), None);
    let first = store
        .put_policy("version: 1\n", "erin", "first", "", t0())
        .await
        .expect("put");
    assert_eq!(first.revision, "p-0001");

    // Two authors edited "nothing": the second loses.
    let lost = store
        .put_policy("version: 1\n# b\n", "frank", "", "", t0())
        .await;
    assert!(
        matches!(&lost, Err(StoreError::Conflict(m)) if m.contains("p-0001")),
        "{lost:?}"
    );
    let later = t0() + Duration::from_secs(60);
    let second = store
        .put_policy("version: 1\n# two\n", "erin", "second", "p-0001", later)
        .await
        .expect("put");
    assert_eq!(second.revision, "p-0002");
    assert!(matches!(
        store.put_policy("x", "frank", "", "p-0001", later).await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        store.current_policy().await.expect("current"),
        Some(second.clone())
    );
    let got = store
        .get_policy("p-0001")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (got.yaml.as_str(), got.author.as_str()),
        ("version: 1\n", "erin")
    );
    assert_eq!(got.created, t0());
    assert_eq!(store.get_policy("p-0009").await.expect("get"), None);

    let history = store.policy_history(0, None).await.expect("history");
    let revisions: Vec<&str> = history.iter().map(|p| p.revision.as_str()).collect();
    assert_eq!(revisions, ["p-0002", "p-0001"]);
    let page = store.policy_history(1, Some("p-0002")).await.expect("page");
    assert_eq!(page, vec![first]);
    assert!(matches!(
        store.policy_history(1, Some("p-0077")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(audit_count(&store, "policy_change").await, 2);
}
