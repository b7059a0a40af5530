//! Asking ahead with a reason, what cannot be asked for, and policies distributed by the server.

use std::{
    thread,
    time::{Duration, Instant},
};

use tests::{GroupSettings, Verdict};

use crate::{request_argv, request_id, run, World, SESSION};

#[test]
fn asking_ahead_carries_the_reason_to_the_approver() {
    let w = World::start("ahead", "", "");
    let asking = w.spawn_agent_cli(
        &w.session,
        &[
            "request",
            "--reason",
            "roll back the broken release",
            "--",
            &w.guarded,
            "delete",
            "release",
        ],
    );
    let req = w.pending_for("alice", &["delete", "release"]);
    assert_eq!(req["reason"], "roll back the broken release", "{req}");
    assert_eq!(req["attempts"], 0, "asked ahead, never tried: {req}");
    approve_and_wait(&w, &req, asking);
    // The grant is in the kernel before `request` reports it: the first try passes.
    w.exec(&["delete", "release"]).assert_ran();
}

#[test]
fn a_pushed_policy_reaches_the_daemon_and_history_names_its_author() {
    let w = World::start("push", "", "");
    let other = w.t.bin("other");
    let yaml = w.t.policy(&format!(
        "{}  - id: no-other\n    exec: {{ binary: \"{other}\" }}\n    action: deny\n",
        crate::approve_rule(&w.guarded, "")
    ));
    let file = w.t.path("second.yaml");
    std::fs::write(&file, &yaml).unwrap_or_else(|e| panic!("{file}: {e}"));

    // Only security admins change policies; a broken policy is refused with its line.
    let refused = w.cp.cli("alice", &["policy", "push", &file]);
    refused.assert_exit(1);
    let broken = w.t.path("broken.yaml");
    std::fs::write(&broken, yaml.replace("action: deny", "action: maybe"))
        .unwrap_or_else(|e| panic!("{broken}: {e}"));
    let bad = w.cp.cli("carol", &["policy", "push", &broken]);
    bad.assert_exit(1);
    assert!(bad.stderr.contains("maybe"), "{bad}");

    w.cp.cli(
        "carol",
        &["policy", "push", &file, "--comment", "block other"],
    )
    .assert_success();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = w.t.probe(&["exec", &other]).in_cgroup(&w.session).run();
        if !matches!(out.verdict(), Verdict::Ran { .. }) {
            w.t.assert_exec_refused(&out);
            w.t.refusal_event(&out, "no-other");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pushed policy never reached the daemon"
        );
        thread::sleep(Duration::from_millis(500));
    }
    let history = w.cp.cli("carol", &["policy", "history"]);
    history.assert_success();
    assert!(
        history.stdout.contains("carol") && history.stdout.contains("block other"),
        "{history}"
    );
}

/// A command line longer than the kernel captures never reaches an approver: approving it would
/// approve bytes nobody read. The server keeps the refusal as evidence, flagged with why, and
/// opens no request; asking ahead for it is refused with the same reason.
#[test]
fn a_command_line_too_long_to_bind_reaches_no_approver() {
    let w = World::start("too-long", "", "");
    let long = format!("{}-x", "p".repeat(600));
    w.t.assert_exec_refused(&w.exec(&["delete", &long]));
    // A short refusal after it: once its request is pending, the long one was uploaded.
    w.t.assert_exec_refused(&w.exec(&["delete", "short"]));
    w.pending_for("alice", &["delete", "short"]);

    let long_argv = |argv: &[String]| argv.iter().any(|a| a.starts_with("ppp"));
    for who in ["alice", "bob"] {
        let shown: Vec<_> = w.cp.pending(who).iter().map(request_argv).collect();
        assert!(
            !shown.iter().any(|a| long_argv(a)),
            "{who} was asked to approve a truncated command line: {shown:?}"
        );
    }
    let trail = w.cp.audit();
    let attempt = trail
        .iter()
        .find(|r| {
            r["kind"] == "attempt"
                && r["subject"]["argv"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|s| s.as_str().is_some_and(|s| s.starts_with("ppp")))
                })
        })
        .unwrap_or_else(|| panic!("no attempt record of the long command line: {trail:?}"));
    assert_eq!(
        attempt["subject"]["details"]["flags"],
        serde_json::json!(["not_approvable_truncated"]),
        "{attempt}"
    );
    assert_eq!(
        attempt["subject"]["details"]["argv_truncated"], true,
        "{attempt}"
    );
    assert!(attempt["subject"]["request_id"].is_null(), "{attempt}");

    let asked = w.agent_cli(
        &w.session,
        &[
            "request", "--reason", "clean up", "--", &w.guarded, "delete", &long,
        ],
    );
    let asked = run(&w.t, asked, "ask-too-long");
    assert!(
        !asked.status.success() && asked.stderr.contains("cannot be approved"),
        "{asked}"
    );
}

/// A file the session wrote, asked for ahead in a group with `agent_written: approve`: the
/// daemon applies the floor as the kernel does — a request for a human, not an "allowed" that
/// the kernel then refuses — and the grant binds the file as written, so the run after the
/// approval passes.
#[test]
fn asking_ahead_to_run_what_the_session_wrote_waits_for_a_human() {
    let w = World::start_with_settings(
        "ahead-written",
        GroupSettings {
            agent_written: Some("approve"),
            ..GroupSettings::default()
        },
    );
    // Named `true`, so that a copy of busybox runs as that applet.
    let built = w.t.path("work/true");
    let copy =
        w.t.probe(&["exec", "/bin/sh", "-c", "cp /bin/true \"$0\"", &built])
            .in_cgroup(&w.session)
            .run();
    assert!(copy.status.success(), "copy in the session: {copy}");
    let asking = w.spawn_agent_cli(
        &w.session,
        &[
            "request",
            "--reason",
            "run what I built",
            "--",
            &built,
            "--go",
        ],
    );
    let req = w.cp.wait_pending("alice", "for the built file", |r| {
        request_argv(r).first() == Some(&built) && r["operation"]["session"] == SESSION
    });
    assert_eq!(req["rule"], "agent-written", "{req}");
    assert_eq!(req["attempts"], 0, "asked ahead, never tried: {req}");
    approve_and_wait(&w, &req, asking);
    w.t.probe(&["exec", &built, "--go"])
        .in_cgroup(&w.session)
        .run()
        .assert_ran();
}

/// Approves `req` once as alice and waits for the `countersign request` that asked for it
/// (`asking`) to end with success.
fn approve_and_wait(w: &World, req: &serde_json::Value, mut asking: tests::process::Spawned) {
    w.cp.cli("alice", &["approve", &request_id(req), "--once"])
        .assert_success();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !asking.has_exited() {
        assert!(
            Instant::now() < deadline,
            "`countersign request` did not end"
        );
        thread::sleep(Duration::from_millis(5));
    }
    asking.wait().assert_success();
}
