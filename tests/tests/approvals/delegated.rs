//! Delegation under approval: a process of the group's account outside every session (what
//! its systemd --user manager, a cron job or a tmux server runs for it) meets an approve rule.
//! The refusal reaches the approvers as a request of the group with no session; the approval
//! becomes a grant for the whole group, and the delegated retry passes, once.

use crate::{request_argv, request_id, World};

/// The agents' account (a bare uid: no password entry needed).
const ACCOUNT: u32 = 64_125;

#[test]
fn work_handed_outside_the_session_is_approved_for_the_group() {
    let w = World::start_with_accounts("delegated-approval", &[ACCOUNT]);
    let run = || {
        w.t.probe(&["exec", &w.guarded, "delete", "handed-over"])
            .outside()
            .as_uid(ACCOUNT)
            .run()
    };
    let first = run();
    w.t.assert_exec_refused(&first);
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
    w.cp.cli("alice", &["approve", &request_id(&request), "--once"])
        .assert_success();

    w.until_it_runs(run);
    // One use: the next delegated try is refused again.
    w.t.assert_exec_refused(&run());
}
