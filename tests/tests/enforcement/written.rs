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
