//! A copy of a guarded binary is the guarded binary: a file the session wrote — a byte copy, a
//! copy with bytes appended, a `cat >` re-creation — or a memfd image is recognised by its
//! content and judged by the original's rule, in both modes, and its event says so. What the
//! agent builds itself runs, as often as it likes.

use tests::{Outcome, TestBed};

use crate::{exec_rule, testbed};

const RULE: &str = "guarded-rule";

/// Starts the daemon with `bin/guarded` under `action`; returns its path.
fn start(t: &mut TestBed, action: &str) -> String {
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule(RULE, &guarded, action)));
    guarded
}

/// How the agent makes its copy, with the tools an agent has.
#[derive(Clone, Copy, Debug)]
enum How {
    Cp,
    Appended,
    Cat,
}

/// The agent, inside its session, makes `dst` out of `src`.
fn copy_in_session(t: &TestBed, how: How, src: &str, dst: &str) {
    let script = match how {
        How::Cp => format!("cp '{src}' '{dst}'"),
        How::Appended => format!("cp '{src}' '{dst}' && echo trailing bytes >> '{dst}'"),
        How::Cat => format!("cat '{src}' > '{dst}' && chmod 755 '{dst}'"),
    };
    let out = t.exec(&["/bin/sh", "-c", &script]);
    assert!(out.status.success(), "{how:?} copy failed: {out}");
}

/// `out` was refused by the guarded binary's rule, as a copy of it the session wrote.
fn assert_refused_as_copy(t: &TestBed, out: &Outcome, guarded: &str) {
    t.assert_exec_refused(out);
    let event = t.refusal_event(out, RULE);
    assert!(event.agent_written, "agent_written: {}", event.line);
    assert_eq!(
        event.copy_of.as_deref(),
        Some(guarded),
        "copy_of: {}",
        event.line
    );
    assert!(
        t.probe_log().is_empty(),
        "the copy ran: {:?}",
        t.probe_log()
    );
}

#[test]
fn copies_the_session_makes_are_refused_as_the_original() {
    let mut t = testbed("copies-deny");
    let guarded = start(&mut t, "deny");
    for (i, how) in [How::Cp, How::Appended, How::Cat].into_iter().enumerate() {
        let copy = t.path(&format!("work/copy-{i}"));
        copy_in_session(&t, how, &guarded, &copy);
        assert_refused_as_copy(&t, &t.exec(&[&copy, "delete", "pod", "x"]), &guarded);
        if i == 0 {
            let by_fd = t.probe(&["execveat-fd", &copy, "by-fd"]).run();
            assert_refused_as_copy(&t, &by_fd, &guarded);
        }
    }
    // Control: a copy of cs-probe that the session did not write (the test bed's `other`)
    // is out of scope (docs/policy.md) and runs; so the refusals above are the copies'.
    t.exec(&[&t.bin("other"), "unmarked"]).assert_ran();
}

#[test]
fn a_memfd_image_of_the_guarded_binary_is_refused() {
    let mut t = testbed("copies-memfd");
    let guarded = start(&mut t, "deny");
    let out = t.probe(&["memfd-exec", &guarded, "fileless"]).run();
    assert_refused_as_copy(&t, &out, &guarded);
    // Control: a memfd image of a binary no rule names runs.
    t.probe(&["memfd-exec", "--argv0", "true", "/bin/true"])
        .run()
        .assert_ran();
}

#[test]
fn an_approved_copy_runs_with_its_grant_and_another_copy_does_not() {
    let mut t = testbed("copies-approve");
    let guarded = start(&mut t, "approve");
    let first = t.path("work/k");
    copy_in_session(&t, How::Cp, &guarded, &first);
    let call = [first.as_str(), "delete", "pod", "x"];
    let out = t.exec(&call);
    assert_refused_as_copy(&t, &out, &guarded);
    let event = t.refusal_event(&out, RULE);
    assert_eq!(event.action, "approve", "{}", event.line);
    let fp = event.fingerprint.clone().expect("fingerprint");
    t.agent().grant(t.name(), &fp, 1, "60s");
    let retry = t.exec(&call);
    retry.assert_ran();
    assert!(retry.printed("ran delete pod x"), "{retry}");
    // The grant is the approved file's: another copy with the same arguments is another
    // operation, refused for approval of its own.
    let second = t.path("work/k2");
    copy_in_session(&t, How::Cp, &guarded, &second);
    let other = t.exec(&[&second, "delete", "pod", "x"]);
    t.assert_exec_refused(&other);
    let event = t.refusal_event(&other, RULE);
    assert_ne!(
        event.fingerprint.as_deref(),
        Some(fp.as_str()),
        "{}",
        event.line
    );
}

/// The everyday loop of a coding agent: build a program, run it, again and again. A file the
/// session wrote is only looked up by content, never refused for being written.
#[test]
fn what_the_agent_builds_runs_a_thousand_times() {
    let mut t = testbed("copies-built");
    start(&mut t, "deny");
    let cc = std::path::Path::new("/usr/bin/cc").exists();
    // Busybox (the VM's /bin/true) picks its applet by the file's name.
    let built = t.path(if cc { "work/built" } else { "work/true" });
    if cc {
        let source = t.path("work/main.c");
        std::fs::write(&source, "int main(void) { return 0; }\n").expect("write main.c");
        let out = t.exec(&["/usr/bin/cc", "-o", &built, &source]);
        assert!(out.status.success(), "cc in the session: {out}");
    } else {
        eprintln!("no C compiler here (the VM's userland): the session copies /bin/true instead");
        let out = t.exec(&["/bin/sh", "-c", &format!("cp /bin/true '{built}'")]);
        assert!(out.status.success(), "{out}");
    }
    t.probe(&["run-many", "1000", &built]).run().assert_ok();
}

/// Marks are kept in an LRU map: an agent that writes more files than it holds after making
/// its copy ages the copy's mark out. From `MARKS_SAFE` new marks on, every exec of a file no
/// rule names by inode is looked up by content, so the copy is still refused — and so is any
/// other copy of the guarded binary, also one the session did not write: stricter, never an
/// allow. The guarded binary here is a copy of `/bin/true`, not of cs-probe, because cs-probe
/// itself starts every process of the test in the session.
#[test]
fn writing_many_files_does_not_age_a_copy_out() {
    let mut t = testbed("copies-evict");
    // Busybox (the VM's /bin/true) picks its applet by the file's name: each file is `true`.
    let [guarded, copy, outside, many] =
        ["guarded", "work", "outside", "many"].map(|dir| t.path(&format!("{dir}/true")));
    std::fs::copy("/bin/true", &guarded).expect("copy /bin/true");
    t.start_agent(&t.policy(&exec_rule(RULE, &guarded, "deny")));
    copy_in_session(&t, How::Cp, &guarded, &copy);
    std::fs::copy("/bin/true", &outside).expect("copy /bin/true outside the session");
    let many = many.trim_end_matches("/true");
    let files = (agent_common::identity::MAX_WRITTEN + 8192).to_string();
    t.probe(&["write-many", &files, many]).run().assert_ok();
    for (path, why) in [
        (&copy, "the session's copy"),
        (&outside, "a copy made outside"),
    ] {
        let out = t.exec(&[path, "after", "many", "writes"]);
        t.assert_exec_refused(&out);
        let event = t.refusal_event(&out, RULE);
        assert_eq!(
            event.copy_of.as_deref(),
            Some(guarded.as_str()),
            "{why}: {}",
            event.line
        );
    }
}
