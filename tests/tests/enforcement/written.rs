//! The group knob `agent_written`: what at least happens when a session runs a file a session
//! wrote — for a strict deployment, a human before an agent runs what it just built or
//! downloaded. The stricter of the knob and the rules applies; files the session did not
//! write are not touched by it.

use tests::{GroupSettings, TestBed};

use crate::testbed;

/// Starts the daemon with no rules and `agent_written: action`; returns a file the session
/// wrote (a copy of `/bin/true`, named so that busybox runs it as `true`).
fn start_with_written(t: &mut TestBed, action: &str) -> String {
    let policy = t.policy_with(
        GroupSettings {
            agent_written: Some(action),
            ..GroupSettings::default()
        },
        "",
    );
    t.start_agent(&policy);
    let built = t.path("work/true");
    let out = t.exec(&["/bin/sh", "-c", &format!("cp /bin/true '{built}'")]);
    assert!(out.status.success(), "copy in the session: {out}");
    built
}

#[test]
fn agent_written_approve_asks_a_human_and_the_grant_lets_the_file_run() {
    let mut t = testbed("written-approve");
    let built = start_with_written(&mut t, "approve");
    let out = t.exec(&[&built, "--first"]);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, "agent-written");
    assert_eq!(event.action, "approve", "{}", event.line);
    assert!(event.agent_written, "{}", event.line);
    assert_eq!(
        event.copy_of, None,
        "not a copy of a guarded binary: {}",
        event.line
    );
    let fp = event.fingerprint.clone().expect("fingerprint");
    t.agent().grant(t.name(), &fp, 1, "60s");
    t.exec(&[&built, "--first"]).assert_ran();
    // A file the session did not write is not the knob's business.
    t.exec(&["/bin/true"]).assert_ran();
}

#[test]
fn agent_written_deny_refuses_what_the_session_wrote_and_a_memfd() {
    let mut t = testbed("written-deny");
    let built = start_with_written(&mut t, "deny");
    let out = t.exec(&[&built]);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, "agent-written");
    assert_eq!(event.action, "deny", "{}", event.line);
    let fileless = t
        .probe(&["memfd-exec", "--argv0", "true", "/bin/true"])
        .run();
    t.assert_exec_refused(&fileless);
    t.refusal_event(&fileless, "agent-written");
    t.exec(&["/bin/true"]).assert_ran();
}

/// A grant binds the file as the session wrote it: opening it for writing again after the
/// refusal (to change its bytes or not) makes another operation, which the grant does not let
/// through. Nor can a session keep the file open for writing across the exec and change it
/// afterwards: the kernel refuses to run a file open for writing (`ETXTBSY`), which is what
/// makes the stamp of the last open for writing stand for the bytes that run.
#[test]
fn a_grant_does_not_run_the_file_rewritten_after_the_approval() {
    let mut t = testbed("written-rewrite");
    let built = start_with_written(&mut t, "approve");
    let mut refused = refusal_of(&t, &built);
    let mut stamps = vec![refused
        .write_stamp
        .expect("an agent-written file has a stamp")];
    for rewrite in [
        // Held open for writing through the exec: the kernel itself refuses it.
        vec!["exec", "--hold-writable", &built, "--first"],
        // Rewritten, here with the very same bytes: what counts is the open for writing.
        vec!["exec", "/bin/sh", "-c", "cat /bin/true > \"$0\"", &built],
    ] {
        let fp = refused.fingerprint.clone().expect("fingerprint");
        t.agent().grant(t.name(), &fp, 3, "60s");
        let out = t.probe(&rewrite).run();
        if rewrite[1] == "--hold-writable" {
            assert_eq!(out.errno(), Some(libc::ETXTBSY), "{out}");
        } else {
            assert!(out.status.success(), "rewrite in the session: {out}");
        }
        refused = refusal_of(&t, &built);
        let stamp = refused.write_stamp.expect("stamp");
        assert!(!stamps.contains(&stamp), "a new stamp: {}", refused.line);
        stamps.push(stamp);
        assert_ne!(
            refused.fingerprint.as_deref(),
            Some(fp.as_str()),
            "the rewritten file is another operation: {}",
            refused.line
        );
        assert_eq!(refused.grant_id, None, "{}", refused.line);
    }
    // Approving the file as it is now lets it run.
    let fp = refused.fingerprint.clone().expect("fingerprint");
    t.agent().grant(t.name(), &fp, 1, "60s");
    t.exec(&[&built, "--first"]).assert_ran();
}

/// `built --first`, refused by the knob; its event.
fn refusal_of(t: &TestBed, built: &str) -> tests::Event {
    let out = t.exec(&[built, "--first"]);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, "agent-written");
    assert!(event.agent_written, "{}", event.line);
    event
}
