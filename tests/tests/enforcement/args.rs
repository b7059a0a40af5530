//! Argument patterns: which calls of a binary are refused, and that rewriting argv while the
//! exec is under way never gets refused arguments through.

use tests::{Mode, Verdict};

use crate::{exec_args_rule, testbed};

#[test]
fn argument_patterns_refuse_only_matching_calls() {
    let mut t = testbed("args-pattern");
    let guarded = t.bin("guarded");
    let rule = exec_args_rule("mutations", &guarded, r#"["delete|apply", "*"]"#, "deny");
    t.start_agent(&t.policy(&rule));

    let refused: [&[&str]; 3] = [&["delete", "x"], &["apply", "x"], &["delete", "x", "extra"]];
    for args in refused {
        let out = t.exec(&[&[guarded.as_str()], args].concat());
        t.assert_exec_refused(&out);
        let event = t.refusal_event(&out, "mutations");
        assert_eq!(
            event.argv().get(1..).unwrap_or_default(),
            args,
            "argv of {}",
            event.line
        );
    }
    // argv[0] is the caller's free text and takes no part in the decision.
    let spoofed = t
        .probe(&["exec", "--argv0", "get", &guarded, "delete", "x"])
        .run();
    t.assert_exec_refused(&spoofed);

    let allowed: [&[&str]; 4] = [
        &["get", "x"],
        &["delete"],
        &["deleted", "x"],
        &["x", "delete"],
    ];
    for args in allowed {
        let out = t.exec(&[&[guarded.as_str()], args].concat());
        out.assert_ran();
        assert!(out.printed(&format!("ran {}", args.join(" "))), "{out}");
    }
}

#[test]
fn argv_rewritten_during_exec_never_runs_refused_arguments() {
    let mut t = testbed("argv-race");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_args_rule(
        "no-delete",
        &guarded,
        r#"["delete"]"#,
        "deny",
    )));

    let attempts = t.env().race_attempts;
    let (mut ran, mut refused, mut killed) = (0, 0, 0);
    for i in 0..attempts {
        let n = i.to_string();
        // Another thread flips the argument between "listed" and "delete" during the exec.
        let out = t
            .probe(&["argv-race", &guarded, "listed", "delete", "@", &n])
            .run();
        assert!(
            !out.printed(&format!("ran delete {n}")),
            "attempt {i}: the refused argv ran: {out}"
        );
        match out.verdict() {
            Verdict::Ran { code: 0 } if out.printed(&format!("ran listed {n}")) => ran += 1,
            Verdict::Killed {
                signal: libc::SIGKILL,
            } => killed += 1,
            _ if out.is_exec_refused(t.mode()) => refused += 1,
            _ => panic!("attempt {i}: unexpected outcome: {out}"),
        }
    }
    let evil: Vec<String> = t
        .probe_log()
        .into_iter()
        .filter(|l| l.split(' ').nth(1) == Some("delete"))
        .collect();
    assert!(evil.is_empty(), "the refused argv ran: {evil:?}");
    let mismatches = t
        .events()
        .read()
        .iter()
        .filter(|e| e.kind == "argv_mismatch")
        .count();
    eprintln!(
        "argv race, {attempts} attempts: {ran} ran with the allowed argv, {refused} refused, \
         {killed} killed; {mismatches} argv_mismatch events so far"
    );
    assert!(
        refused + killed > 0,
        "the kernel never saw the refused argv: the race was not exercised"
    );
    if t.mode() == Mode::Lsm && killed > 0 {
        // With LSM the only kills are argv mismatches, and each one is reported.
        t.events()
            .wait_for("of kind argv_mismatch", |e| e.kind == "argv_mismatch");
    }
}
