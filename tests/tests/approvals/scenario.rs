//! The README's walk-through, asserted: refused → pending for the approver with its whole
//! context → approved once → the waiting agent's retry passes at once → a second retry is
//! refused again → a different argv is a different request → the audit trail tells it all.

use std::time::{Duration, Instant};

use tests::{control_plane::HOST, Verdict};

use crate::{
    finish, postgres_database, postgres_url, request_argv, request_id, World, LAUNCHED_BY, RULE,
};

/// Approval → retry passes, end to end on this machine (the target is 100 ms; the
/// bound leaves room for a loaded CI machine and software-emulated VMs, the figure is printed
/// and `cargo xtask bench` measures p50/p99).
const RETRY_BOUND: Duration = Duration::from_secs(5);

#[test]
fn refusal_approval_retry_on_sqlite() {
    walk_through(World::start("walk-sqlite", "", ""));
}

#[test]
fn refusal_approval_retry_on_postgresql() {
    let Some(url) = postgres_url() else { return };
    walk_through(World::start_with(
        "walk-pg",
        |_| postgres_database(&url, "walk-pg"),
        "",
        "",
    ));
}

fn walk_through(w: World) {
    let call = ["delete", "deploy", "web"];
    // 1. The agent's first try is refused by the kernel.
    let first = w.exec(&call);
    w.t.assert_exec_refused(&first);
    w.t.refusal_event(&first, RULE);

    // 2. The approver sees it with everything needed to decide.
    let req = w.pending_for("alice", &call);
    let id = request_id(&req);
    assert_eq!(req["host"], HOST, "host of {req}");
    assert_eq!(req["rule"], RULE, "rule of {req}");
    assert_eq!(
        req["operation"]["agent_group"],
        w.t.name(),
        "group of {req}"
    );
    assert_eq!(
        req["operation"]["launching_user"], LAUNCHED_BY,
        "launched by, in {req}"
    );
    assert_eq!(
        req["operation"]["binary"],
        w.guarded.as_str(),
        "binary of {req}"
    );
    assert!(
        req["operation"]["parents"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "parent chain of {req}"
    );
    assert!(req["attempts"].as_u64() >= Some(1), "attempts of {req}");
    assert_eq!(req["state"], "pending", "state of {req}");
    let shown = w.cp.show("alice", &id);
    assert_eq!(
        shown["rule_description"], "Deleting needs a human",
        "{shown}"
    );

    // 3. The agent retries through `countersign exec`, which waits for the decision; the
    //    attempt joins the same request.
    let mut waiting = w.spawn_exec(&call);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    w.wait_attempts(&id, 2);

    // 4. Approved once: the waiting retry passes right away.
    let approve = w.cp.cli("alice", &["approve", &id, "--once"]);
    let approved_at = Instant::now();
    approve.assert_success();
    let (retried, took) = finish(waiting, approved_at);
    eprintln!("approval → retry passed: {took:?}");
    assert_eq!(
        retried.verdict(),
        Verdict::Ran { code: 0 },
        "retry: {retried}"
    );
    assert!(
        retried.stdout.contains("ran delete deploy web"),
        "retry: {retried}"
    );
    assert!(took < RETRY_BOUND, "retry took {took:?} after the approval");
    let used = w.t.events().wait_for("granted retry", |e| {
        e.outcome == "granted" && e.argv.as_deref() == Some(&call_argv(&w, &call)[..])
    });
    assert!(used.grant_id.is_some(), "grant id of {}", used.line);

    // 5. One use only: the next identical try is refused and is a new request.
    let again = w.exec(&call);
    w.t.assert_exec_refused(&again);
    let second =
        w.cp.wait_pending("alice", "after the one-shot grant was used", |r| {
            request_argv(r) == call_argv(&w, &call) && request_id(r) != id
        });
    assert_eq!(second["attempts"], 1, "{second}");

    // 6. A different argv is a different operation: its own request, its own fingerprint.
    let other = w.exec(&["delete", "deploy", "db"]);
    w.t.assert_exec_refused(&other);
    let third = w.pending_for("alice", &["delete", "deploy", "db"]);
    assert_ne!(
        third["operation"]["fingerprint"], second["operation"]["fingerprint"],
        "{third} vs {second}"
    );

    // 7. The audit trail has the whole story, linked by request id.
    let trail = w.cp.audit();
    let of = |kind: &str| {
        trail
            .iter()
            .filter(|r| r["kind"] == kind && r["subject"]["request_id"] == id.as_str())
            .count()
    };
    for kind in ["request", "decision", "grant", "grant_use"] {
        assert_eq!(of(kind), 1, "one `{kind}` record of {id} in the trail");
    }
    assert!(
        trail
            .iter()
            .any(|r| r["kind"] == "attempt" && r["subject"]["rule"] == RULE),
        "attempts in the trail"
    );
    let decision = trail
        .iter()
        .find(|r| r["kind"] == "decision" && r["subject"]["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("decision of {id}"));
    assert_eq!(decision["actor"]["id"], "alice", "{decision}");
}

/// argv as the kernel reports it: the path the caller used, then the arguments.
fn call_argv(w: &World, args: &[&str]) -> Vec<String> {
    std::iter::once(w.guarded.clone())
        .chain(args.iter().map(|a| a.to_string()))
        .collect()
}
