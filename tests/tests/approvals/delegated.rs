//! Delegation under approval: a process of the group's account outside every session (what
//! its systemd --user manager, a cron job or a tmux server runs for it) meets an approve rule.
//! The refusal reaches the approvers as a request of the group with no session. Nobody is
//! known to have launched that work, so separation of duties cannot be checked: approving is
//! refused unless the rule waives the check (`allow_launcher: true`); then the approval
//! becomes a grant for the whole group, and the delegated retry passes, once.

use crate::{request_argv, request_id, World};

/// The agents' account (a bare uid: no password entry needed).
const ACCOUNT: u32 = 64_125;

/// `guarded delete handed-over` run by the group's account outside every session.
fn run_delegated(w: &World) -> tests::Outcome {
    w.t.probe(&["exec", &w.guarded, "delete", "handed-over"])
        .outside()
        .as_uid(ACCOUNT)
        .run()
}

/// Runs the delegated operation, checks the kernel refused it, and returns its request as
/// alice lists it: a request of the group without a session.
fn delegated_request(w: &World) -> serde_json::Value {
    w.t.assert_exec_refused(&run_delegated(w));
    let argv = vec![
        w.guarded.clone(),
        "delete".to_owned(),
        "handed-over".to_owned(),
    ];
    let request = w.cp.wait_pending("alice", "the delegated request", |r| {
        request_argv(r) == argv
    });
    let session = &request["operation"]["session"];
    assert!(
        session.is_null() || session == "",
        "a process outside the sessions has no session: {request}"
    );
    assert_eq!(request["operation"]["agent_group"], w.t.name(), "{request}");
    request
}

#[test]
fn work_handed_outside_the_session_is_approved_for_the_group() {
    let w = World::start_with_accounts(
        "delegated-approval",
        &[ACCOUNT],
        "{ groups: [sre], allow_launcher: true }",
    );
    let request = delegated_request(&w);
    w.cp.cli("alice", &["approve", &request_id(&request), "--once"])
        .assert_success();

    w.until_it_runs(|| run_delegated(&w));
    // One use: the next delegated try is refused again.
    w.t.assert_exec_refused(&run_delegated(&w));
}

/// An agent that hands its operation to a delegator outside its session (so that no
/// launcher is known, and its own launcher could approve it) gets no approval from anyone
/// unless the rule waives the check; approvers still see the request and may deny it.
#[test]
fn work_handed_outside_the_session_is_not_approved_without_a_known_launcher() {
    let w = World::start_with_accounts("delegated-unknown", &[ACCOUNT], "");
    let id = request_id(&delegated_request(&w));
    let approve = w.cp.cli("alice", &["approve", &id, "--once"]);
    approve.assert_exit(1);
    let said = format!("{}{}", approve.stdout, approve.stderr);
    assert!(
        said.contains("nobody is known to have launched work of agent group")
            && said.contains("allow_launcher: true"),
        "{approve}"
    );
    w.cp.cli("alice", &["deny", &id, "--reason", "who asked?"])
        .assert_success();
}
