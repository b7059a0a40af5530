//! Who may decide, and what a decision does: denial with a reason, N-of-M, separation of
//! duties, roles, grant limits, expiry of requests and of grants.

use std::{
    thread,
    time::{Duration, Instant},
};

use tests::Verdict;

use crate::{finish, request_id, World};

#[test]
fn a_denial_reaches_the_waiting_agent_with_its_reason() {
    let w = World::start("deny", "", "");
    let mut waiting = w.spawn_exec(&["delete", "pod", "x"]);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    let id = request_id(&w.pending_for("bob", &["delete", "pod", "x"]));

    let deny =
        w.cp.cli("bob", &["deny", &id, "--reason", "not during the freeze"]);
    deny.assert_success();
    let (out, _) = finish(waiting, Instant::now());
    out.assert_exit(1);
    assert!(
        out.stderr.contains("not during the freeze") && out.stderr.contains("bob"),
        "the agent must learn who denied and why: {out}"
    );
    // Denied is final: approving afterwards is refused, and nothing got through.
    let late = w.cp.cli("alice", &["approve", &id, "--once"]);
    late.assert_exit(1);
    assert!(late.stderr.contains("denied"), "{late}");
    w.t.assert_exec_refused(&w.exec(&["delete", "pod", "x"]));
    let shown = w.cp.show("alice", &id);
    assert_eq!(shown["state"], "denied", "{shown}");
}

#[test]
fn two_of_two_approvers_and_the_roles_that_may_not_decide() {
    let w = World::start("two-of-two", "{ groups: [sre], min: 2 }", "");
    let mut waiting = w.spawn_exec(&["delete", "db"]);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    let id = request_id(&w.pending_for("alice", &["delete", "db"]));

    let first = w.cp.cli("alice", &["approve", &id, "--once"]);
    first.assert_success();
    assert!(first.stdout.contains("1 of 2"), "{first}");
    // The same approval twice counts once and is not an error (a double click).
    w.cp.cli("alice", &["approve", &id, "--once"])
        .assert_success();
    thread::sleep(Duration::from_millis(300));
    assert!(
        !waiting.has_exited(),
        "one approval of two must not let the agent through"
    );

    // Not in the rule's groups, no role at all: refused, and counted as nothing.
    let dba = w.cp.cli("dave", &["approve", &id, "--once"]);
    dba.assert_exit(1);
    assert!(
        dba.stderr.contains("sre"),
        "dave is told which groups decide: {dba}"
    );
    let nobody = w.cp.cli("erin", &["approve", &id, "--once"]);
    nobody.assert_exit(1);
    assert!(nobody.stderr.contains("approver"), "{nobody}");

    let second = w.cp.cli("bob", &["approve", &id, "--once"]);
    let approved_at = Instant::now();
    second.assert_success();
    let (out, took) = finish(waiting, approved_at);
    eprintln!("second approval → retry passed: {took:?}");
    assert_eq!(out.verdict(), Verdict::Ran { code: 0 }, "{out}");
    let shown = w.cp.show("carol", &id);
    let deciders: Vec<&str> = shown["decisions"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["decided_by"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(deciders, ["alice", "bob"], "{shown}");
}

#[test]
fn the_person_who_launched_the_session_cannot_approve_it() {
    let w = World::start("launcher", "", "");
    // alice launches an agent session (through sudo, as the daemon sees it).
    let refused = w.launch_session(
        "alice-s",
        "alice",
        &["exec", &w.guarded, "delete", "cluster"],
    );
    w.t.assert_exec_refused(&refused);
    let req = w.cp.wait_pending("bob", "of alice's session", |r| {
        r["operation"]["session"] == "alice-s"
    });
    assert_eq!(req["operation"]["launching_user"], "alice", "{req}");
    let id = request_id(&req);

    let own = w.cp.cli("alice", &["approve", &id, "--once"]);
    own.assert_exit(1);
    assert!(own.stderr.contains("launched"), "{own}");
    // alice does not even see it among the requests she may decide on.
    assert!(
        w.cp.pending("alice").iter().all(|r| request_id(r) != id),
        "alice must not be offered her own session's request"
    );
    w.cp.cli("bob", &["approve", &id, "--once"])
        .assert_success();
    let shown = w.cp.show("bob", &id);
    assert_eq!(shown["state"], "approved", "{shown}");
}

#[test]
fn requests_and_grants_expire() {
    let w = World::start(
        "expiry",
        "{ groups: [sre], min: 1, expires: 3s, grant: { uses: 0, ttl: 4s } }",
        "",
    );
    // A request nobody decides on expires, and the waiting agent is told.
    let mut waiting = w.spawn_exec(&["delete", "a"]);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    let id = request_id(&w.pending_for("alice", &["delete", "a"]));
    let (out, took) = finish(waiting, Instant::now());
    out.assert_exit(1);
    assert!(out.stderr.contains("expired"), "{out}");
    eprintln!("request expired {took:?} after it was seen");
    let shown = w.cp.show("alice", &id);
    assert_eq!(shown["state"], "expired", "{shown}");
    let late = w.cp.cli("alice", &["approve", &id, "--once"]);
    late.assert_exit(1);
    assert!(late.stderr.contains("expired"), "{late}");

    // The approver cannot give more than the rule allows.
    let mut waiting = w.spawn_exec(&["delete", "b"]);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    let id = request_id(&w.pending_for("alice", &["delete", "b"]));
    let too_long = w.cp.cli("alice", &["approve", &id, "--for", "1h"]);
    too_long.assert_exit(1);
    assert!(
        too_long.stderr.contains("4s"),
        "the limit is named: {too_long}"
    );

    // A grant for a while lets every identical try through until it expires.
    w.cp.cli("alice", &["approve", &id, "--for", "4s"])
        .assert_success();
    let granted_at = Instant::now();
    let (out, _) = finish(waiting, granted_at);
    assert_eq!(out.verdict(), Verdict::Ran { code: 0 }, "{out}");
    w.exec(&["delete", "b"]).assert_ran();
    let left = Duration::from_secs(5).saturating_sub(granted_at.elapsed());
    thread::sleep(left);
    w.t.assert_exec_refused(&w.exec(&["delete", "b"]));
}

#[test]
fn a_revoked_grant_lets_nothing_through() {
    let w = World::start(
        "revoke",
        "{ groups: [sre], min: 1, grant: { uses: 0, ttl: 10m } }",
        "",
    );
    w.t.assert_exec_refused(&w.exec(&["delete", "cache"]));
    let id = request_id(&w.pending_for("alice", &["delete", "cache"]));
    w.cp.cli("alice", &["approve", &id, "--for", "10m"])
        .assert_success();
    let grant = w.cp.show("alice", &id)["grant_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(grant.len(), 16, "grant id of {id}: {grant:?}");

    // Only the rule's approvers (or an admin) revoke; then it is gone from the kernel.
    w.cp.cli("dave", &["revoke", &grant, "--reason", "not mine"])
        .assert_exit(1);
    w.cp.cli("bob", &["revoke", &grant, "--reason", "changed our mind"])
        .assert_success();
    let again = w.cp.cli("bob", &["revoke", &grant, "--reason", "twice"]);
    again.assert_exit(1);
    assert!(again.stderr.contains("revoked"), "{again}");
    // The revocation travels the same ordered stream as the grant: give it a moment.
    thread::sleep(Duration::from_secs(2));
    w.t.assert_exec_refused(&w.exec(&["delete", "cache"]));
}

/// Root on a host the control plane manages cannot grant locally: approvers, separation of
/// duties and the audit trail are the server's, and a local grant would pass by all three.
#[test]
fn a_managed_host_takes_its_grants_from_the_control_plane_only() {
    let w = World::start("local-grant", "", "");
    let call = ["delete", "pod", "x"];
    let out = w.exec(&call);
    w.t.assert_exec_refused(&out);
    let event = w.t.refusal_event(&out, crate::RULE);
    let fp = event.fingerprint.clone().expect("fingerprint");
    let local = w.t.agent().try_grant(w.t.name(), None, &fp, 1, "60s");
    assert!(!local.status.success(), "{local}");
    assert!(
        local.stderr.contains("control plane") && local.stderr.contains("countersign approve"),
        "root is told where grants come from: {local}"
    );
    w.t.assert_exec_refused(&w.exec(&call));
}
