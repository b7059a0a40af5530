//! The store against both databases: every test function runs once on SQLite (a temporary
//! file) and once on PostgreSQL (`COUNTERSIGN_TEST_POSTGRES`, a URL of a server where the
//! test may create databases; `cargo xtask test` starts one). Without that variable the
//! PostgreSQL half prints why and passes, unless `COUNTERSIGN_REQUIRE_POSTGRES=1`.

#[path = "store/audit.rs"]
mod audit;
#[path = "store/chat.rs"]
mod chat;
#[path = "store/compat.rs"]
mod compat;
#[path = "store/db.rs"]
mod db;
#[path = "store/decide.rs"]
mod decide;
#[path = "store/expiry.rs"]
mod expiry;
#[path = "store/grants.rs"]
mod grants;
#[path = "store/ingest.rs"]
mod ingest;
#[path = "store/perf.rs"]
mod perf;
#[path = "store/policy.rs"]
mod policy;
#[path = "store/requests.rs"]
mod requests;
#[path = "store/sessions.rs"]
mod sessions;
#[path = "store/support.rs"]
mod support;

/// Runs the async test function `$name(db::Db)` on each backend, as `$name::sqlite` and
/// `$name::postgres`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::db::Db::sqlite();
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::db::Db::postgres(stringify!($name)).await {
                    super::$name(&db).await;
                    db.drop_database().await;
                }
            }
        }
    };
}

/// Every store future can be spawned (tonic handlers need `Send` futures).
#[expect(dead_code, reason = "a compile-time check, never called")]
fn futures_are_send(store: control_plane::store::Store) {
    use countersign_api::pb;
    use std::time::SystemTime;
    fn send<T: Send>(_: &T) {}
    let now = SystemTime::now();
    let spec = support::spec(1);
    send(&store.register_host("h", &pb::RegisterRequest::default(), now));
    send(&store.ingest("h", Vec::new(), now));
    send(&store.forward("h", &pb::Operation::default(), &spec, "", now));
    send(&store.decision_events("h", 0, 1));
    send(&store.get_request("r"));
    send(&store.decisions_of("r"));
    send(&store.list_requests(&control_plane::store::RequestFilter::default()));
    send(&store.decide(
        "r",
        now,
        support::judge("a", control_plane::store::Verdict::ApproveOnce),
    ));
    send(&store.expire_due(now));
    send(&store.get_grant("g"));
    send(&store.revoke("g", "a", "", now));
    send(&store.put_policy("", "a", "", "", now));
    send(&store.current_policy());
    send(&store.get_policy("p"));
    send(&store.policy_history(1, None));
    send(&store.audit_records(None, 1));
    send(&store.audit_checkpoint(now));
    send(&store.audit_verify());
}
