//! Grants (retry tokens): an `approve` refusal carries a fingerprint; a grant for it lets the
//! identical operation through as many times as it says, until it expires, and nothing else.

use std::{
    ffi::CString,
    fs::OpenOptions,
    os::unix::fs::OpenOptionsExt as _,
    thread,
    time::{Duration, Instant},
};

use tests::{Outcome, TestBed, Verdict};

use crate::{exec_rule, testbed};

const RULE: &str = "needs-approval";

/// Starts the daemon with `bin/guarded` needing approval; returns its path.
fn start_approving(t: &mut TestBed) -> String {
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule(RULE, &guarded, "approve")));
    guarded
}

/// Execs `call`, checks it was refused pending approval, returns the event's fingerprint.
fn refused_fingerprint(t: &TestBed, call: &[&str]) -> String {
    let out = t.exec(call);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, RULE);
    assert_eq!(event.action, "approve", "action of {}", event.line);
    let fp = event.fingerprint.clone().unwrap_or_default();
    assert!(
        fp.len() == 16 && fp.chars().all(|c| c.is_ascii_hexdigit()),
        "an approve refusal needs a 16 hex digit fingerprint: {}",
        event.line
    );
    fp
}

#[test]
fn one_use_grant_lets_exactly_the_next_identical_exec_through() {
    let mut t = testbed("grant-once");
    let guarded = start_approving(&mut t);
    let call = [guarded.as_str(), "delete", "pod", "x"];
    let fp = refused_fingerprint(&t, &call);
    eprintln!("grant: {}", t.agent().grant(t.name(), &fp, 1, "60s"));

    let retry = t.exec(&call);
    retry.assert_ran();
    let event = t.events().wait_for_pid("exec", retry.pid);
    assert_eq!(event.outcome, "granted", "outcome of {}", event.line);
    assert_eq!(
        event.fingerprint.as_deref(),
        Some(fp.as_str()),
        "fingerprint of {}",
        event.line
    );
    assert!(
        event.grant_id.as_ref().is_some_and(|g| !g.is_null()),
        "grant_id of {}",
        event.line
    );

    let again = t.exec(&call);
    t.assert_exec_refused(&again);
    t.refusal_event(&again, RULE);
}

#[test]
fn racing_retries_use_a_one_use_grant_once() {
    let mut t = testbed("grant-race");
    let guarded = start_approving(&mut t);
    let call = [guarded.as_str(), "delete", "pod", "x"];
    let fp = refused_fingerprint(&t, &call);
    t.agent().grant(t.name(), &fp, 1, "60s");

    let fifo = t.path("release.fifo");
    let c_fifo = CString::new(fifo.as_str()).expect("fifo path");
    // SAFETY: c_fifo is a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) },
        0,
        "mkfifo {fifo}"
    );
    let racer = [&["exec", "--wait-fifo", fifo.as_str()][..], &call].concat();
    let mut racers = [t.probe(&racer).spawn(), t.probe(&racer).spawn()];
    for r in &mut racers {
        r.wait_for_line("waiting", Duration::from_secs(20));
    }
    thread::sleep(Duration::from_millis(200)); // both are now blocked opening the FIFO
    let release = open_writer(&fifo); // wakes every blocked reader at once
    let outcomes = racers.map(|r| r.wait());
    drop(release);

    let ran = outcomes
        .iter()
        .filter(|o| o.verdict() == Verdict::Ran { code: 0 })
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| o.is_exec_refused(t.mode()))
        .count();
    assert_eq!(
        (ran, refused),
        (1, 1),
        "exactly one of two racing retries may use a one-use grant:\n{}\n{}",
        outcomes[0],
        outcomes[1]
    );
}

/// Opens the FIFO for writing without ever blocking (ENXIO until a reader is there).
fn open_writer(fifo: &str) -> std::fs::File {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(file) => return file,
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::ENXIO) => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("cannot open {fifo} for writing (no racer waiting?): {e}"),
        }
    }
}

#[test]
fn expired_grant_lets_nothing_through() {
    let mut t = testbed("grant-expired");
    let guarded = start_approving(&mut t);
    let call = [guarded.as_str(), "delete", "pod", "x"];
    let fp = refused_fingerprint(&t, &call);
    t.agent().grant(t.name(), &fp, 1, "1s");
    thread::sleep(Duration::from_secs(2));

    let late: Outcome = t.exec(&call);
    t.assert_exec_refused(&late);
    t.refusal_event(&late, RULE);
}

#[test]
fn grant_is_bound_to_the_exact_arguments() {
    let mut t = testbed("grant-argv");
    let guarded = start_approving(&mut t);
    let approved = [guarded.as_str(), "delete", "pod", "x"];
    let fp = refused_fingerprint(&t, &approved);
    t.agent().grant(t.name(), &fp, 1, "60s");

    let different = t.exec(&[guarded.as_str(), "delete", "pod", "y"]);
    t.assert_exec_refused(&different);
    let event = t.refusal_event(&different, RULE);
    assert_ne!(
        event.fingerprint.as_deref(),
        Some(fp.as_str()),
        "{}",
        event.line
    );

    // The different call did not use up the grant.
    t.exec(&approved).assert_ran();
}
