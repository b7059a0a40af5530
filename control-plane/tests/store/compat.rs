//! Audit trails written before the verdict became typed stay valid: the fixture
//! `trail-before-typed-verdicts.jsonl` was exported by the build before that change (commit
//! ffab6f5, with [`trail`] of [`old_daemon_event`]s written to the file) from the events
//! below, as daemons of that time sent them (strings). It still verifies, and the same events,
//! sent the old way or the new way, give that trail byte for byte.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use control_plane::audit::{export::jsonl, verify};
use control_plane::store::{Ingest, Store};
use countersign_api::pb;
use countersign_api::verdict::{Action, Judged, Mode, Outcome};

const FIXTURE: &str = "tests/fixtures/trail-before-typed-verdicts.jsonl";

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_442_400)
}

/// (kind, action, outcome, mode, rule, destination) of each uploaded event.
const EVENTS: [(pb::OperationKind, &str, &str, &str, &str, bool); 7] = [
    (
        pb::OperationKind::Exec,
        "audit",
        "allowed",
        "lsm",
        "tools-audit",
        false,
    ),
    (
        pb::OperationKind::Connect,
        "deny",
        "refused",
        "fallback",
        "cloud-metadata",
        true,
    ),
    (
        pb::OperationKind::Exec,
        "approve",
        "killed",
        "fallback",
        "kubectl-mutations",
        false,
    ),
    (
        pb::OperationKind::Exec,
        "approve",
        "would_refuse",
        "lsm",
        "kubectl-mutations",
        false,
    ),
    (
        pb::OperationKind::Exec,
        "allow",
        "allowed",
        "lsm",
        "",
        false,
    ),
    (
        pb::OperationKind::ArgvMismatch,
        "deny",
        "killed",
        "fallback",
        "rm",
        false,
    ),
    (
        pb::OperationKind::Connect,
        "approve",
        "refused",
        "lsm",
        "db",
        true,
    ),
];

fn operation(destination: bool) -> pb::Operation {
    pb::Operation {
        agent_group: "coding".into(),
        session: "s-1".into(),
        cgroup: "/countersign/coding/s-1".into(),
        cgroup_id: 77,
        launching_user: "dave".into(),
        uid: 1000,
        pid: 4242,
        tgid: 4242,
        comm: "kubectl".into(),
        binary: "/usr/bin/kubectl".into(),
        device: "8:1".into(),
        inode: 4242,
        argv: vec!["kubectl".into(), "delete".into(), "pod".into()],
        fingerprint: "0123456789abcdef0123456789abcdef".into(),
        destination: destination.then(|| pb::Destination {
            address: "10.0.0.5".into(),
            port: 5432,
            protocol: "tcp".into(),
            family: "ipv4".into(),
        }),
        ..pb::Operation::default()
    }
}

/// Event `i` as a daemon that predates the typed verdict sends it.
#[allow(deprecated, reason = "the strings of older daemons")]
fn old_daemon_event(i: usize) -> pb::EventRecord {
    let (kind, action, outcome, mode, rule, destination) = EVENTS[i];
    pb::EventRecord {
        sequence: i as u64 + 1,
        time: Some((t0() + Duration::from_millis(250 * i as u64)).into()),
        kind: kind as i32,
        action: action.into(),
        outcome: outcome.into(),
        mode: mode.into(),
        rule: rule.into(),
        operation: Some(operation(destination)),
        ..pb::EventRecord::default()
    }
}

/// The JSON Lines export of a fresh store that received `events`.
async fn trail(events: Vec<pb::EventRecord>) -> String {
    let interval = std::num::NonZeroU64::new(5).expect("non-zero");
    let store = Store::open("sqlite::memory:", crate::db::key(), interval, "compat")
        .await
        .expect("open");
    let batch = events
        .into_iter()
        .map(|event| Ingest {
            event,
            request: None,
        })
        .collect();
    store.ingest("build-01", batch, t0()).await.expect("ingest");
    let mut out = String::new();
    for r in store.audit_records(None, 0).await.expect("records") {
        out.push_str(&jsonl::to_line(&r).expect("a line"));
        out.push('\n');
    }
    out
}

/// Event `i` with only the typed verdict (the deprecated strings left empty).
#[allow(deprecated, reason = "emptied, to show that nothing reads them")]
fn typed_event(i: usize) -> pb::EventRecord {
    let mut e = old_daemon_event(i);
    let judged = Judged {
        action: Action::parse(&e.action).expect("an action"),
        outcome: Outcome::parse(&e.outcome).expect("an outcome"),
        mode: Mode::parse(&e.mode).expect("a mode"),
    };
    judged.stamp(&mut e);
    e.action.clear();
    e.outcome.clear();
    e.mode.clear();
    e
}

#[tokio::test]
async fn a_trail_written_before_typed_verdicts_still_verifies_and_is_written_the_same() {
    let fixture = std::fs::read_to_string(FIXTURE).expect("the fixture");
    let summary = verify(fixture.as_bytes(), &crate::db::key().verifying_key()).expect("verifies");
    assert_eq!((summary.records, summary.checkpoints), (8, 1));
    let old = trail((0..EVENTS.len()).map(old_daemon_event).collect()).await;
    assert_eq!(old, fixture, "older daemons' events give the same trail");
    let typed = trail((0..EVENTS.len()).map(typed_event).collect()).await;
    assert_eq!(typed, fixture, "typed events give the same trail");
}
