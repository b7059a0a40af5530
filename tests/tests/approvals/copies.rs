//! A copy of a guarded binary that the session made, approved through the server: the request
//! names the copy as the session wrote it (its write stamp is part of the operation id the
//! server recomputes), the approval lets it run, and the same file written again after the
//! approval is another request.

use crate::{request_argv, request_id, World, SESSION};

#[test]
fn an_approved_copy_runs_and_rewriting_it_asks_again() {
    let w = World::start("copy-approval", "", "");
    let copy = w.t.path("work/copy");
    let write_copy = || {
        let out =
            w.t.probe(&[
                "exec",
                "/bin/sh",
                "-c",
                "cat \"$0\" > \"$1\" && chmod +x \"$1\"",
                &w.guarded,
                &copy,
            ])
            .in_cgroup(&w.session)
            .run();
        assert!(out.status.success(), "copy in the session: {out}");
    };
    let run_copy = || {
        w.t.probe(&["exec", &copy, "delete", "pod", "x"])
            .in_cgroup(&w.session)
            .run()
    };
    let pending = |except: &str| {
        w.cp.wait_pending("alice", "for the copy", |r| {
            request_argv(r).first() == Some(&copy)
                && r["operation"]["session"] == SESSION
                && request_id(r) != except
        })
    };

    write_copy();
    let first = run_copy();
    w.t.assert_exec_refused(&first);
    let event = w.t.refusal_event(&first, crate::RULE);
    assert_eq!(
        event.copy_of.as_deref(),
        Some(w.guarded.as_str()),
        "{}",
        event.line
    );
    assert!(event.write_stamp.is_some(), "{}", event.line);
    let req = pending("");
    let id = request_id(&req);
    assert_eq!(req["operation"]["binary"], copy.as_str(), "{req}");
    w.cp.cli("alice", &["approve", &id, "--once"])
        .assert_success();
    w.until_it_runs(run_copy);

    // Written again after the approval (the same bytes): another operation, another request.
    write_copy();
    let again = run_copy();
    w.t.assert_exec_refused(&again);
    let second = pending(&id);
    assert_ne!(
        second["operation"]["fingerprint"], req["operation"]["fingerprint"],
        "{second}"
    );
    w.cp.cli("alice", &["approve", &request_id(&second), "--once"])
        .assert_success();
    w.until_it_runs(run_copy);
}
