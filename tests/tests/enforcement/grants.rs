//! Grants (retry tokens): an `approve` refusal carries a fingerprint; a grant for it lets the
//! identical operation through as many times as it says, until it expires, and nothing else.

use std::{
    ffi::CString,
    fs::OpenOptions,
    os::unix::fs::OpenOptionsExt as _,
    thread,
    time::{Duration, Instant},
};

use tests::{collision, events::Event, Outcome, TestBed, Verdict};

use crate::{exec_rule, network_rule, testbed};

const RULE: &str = "needs-approval";

/// Starts the daemon with `bin/guarded` needing approval; returns its path.
fn start_approving(t: &mut TestBed) -> String {
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule(RULE, &guarded, "approve")));
    guarded
}

/// Starts the daemon with `bin/guarded` needing approval and the network rule `net`
/// (`id`, YAML flow mapping, action); returns the guarded path.
fn start_approving_with_net(t: &mut TestBed, id: &str, net: &str, action: &str) -> String {
    let guarded = t.bin("guarded");
    let policy = t.policy(&format!(
        "{}{}",
        exec_rule(RULE, &guarded, "approve"),
        network_rule(id, net, action)
    ));
    t.start_agent(&policy);
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
        fp.len() == 32 && fp.chars().all(|c| c.is_ascii_hexdigit()),
        "an approve refusal needs a 32 hex digit operation id: {}",
        event.line
    );
    fp
}

/// Starts the daemon with `bin/guarded` needing approval, has `guarded delete pod x` refused
/// and granted `uses` times (0: unlimited) for `ttl`; returns the guarded path and the
/// operation's fingerprint.
fn granted(t: &mut TestBed, uses: u32, ttl: &str) -> (String, String) {
    let guarded = start_approving(t);
    let fp = refused_fingerprint(t, &[guarded.as_str(), "delete", "pod", "x"]);
    eprintln!("grant: {}", t.agent().grant(t.name(), &fp, uses, ttl));
    (guarded, fp)
}

#[test]
fn one_use_grant_lets_exactly_the_next_identical_exec_through() {
    let mut t = testbed("grant-once");
    let (guarded, fp) = granted(&mut t, 1, "60s");
    let call = [guarded.as_str(), "delete", "pod", "x"];

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

/// A grant of three uses is three one-use slots: each retry claims the next whose ticket is
/// still there (slots already used stay in the map until the daemon's sweep), three run, and
/// the fourth is refused.
#[test]
fn a_grant_of_three_uses_lets_exactly_three_identical_execs_through() {
    let mut t = testbed("grant-three");
    let (guarded, _) = granted(&mut t, 3, "60s");
    let call = [guarded.as_str(), "delete", "pod", "x"];
    for use_ in 1..=3 {
        let retry = t.exec(&call);
        assert_eq!(
            retry.verdict(),
            Verdict::Ran { code: 0 },
            "use {use_}: {retry}"
        );
        let event = t.events().wait_for_pid("exec", retry.pid);
        assert_eq!(event.outcome, "granted", "use {use_}: {}", event.line);
    }
    let fourth = t.exec(&call);
    t.assert_exec_refused(&fourth);
    t.refusal_event(&fourth, RULE);
}

#[test]
fn racing_retries_use_a_one_use_grant_once() {
    let mut t = testbed("grant-race");
    let (guarded, _) = granted(&mut t, 1, "60s");
    let call = [guarded.as_str(), "delete", "pod", "x"];

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
    let (guarded, _) = granted(&mut t, 1, "1s");
    let call = [guarded.as_str(), "delete", "pod", "x"];
    thread::sleep(Duration::from_secs(2));

    let late: Outcome = t.exec(&call);
    t.assert_exec_refused(&late);
    t.refusal_event(&late, RULE);
}

#[test]
fn grant_is_bound_to_the_exact_arguments() {
    let mut t = testbed("grant-argv");
    let (guarded, fp) = granted(&mut t, 1, "60s");
    let approved = [guarded.as_str(), "delete", "pod", "x"];

    refused_as_another_operation(&t, &[guarded.as_str(), "delete", "pod", "y"], &fp);

    // The different call did not use up the grant.
    t.exec(&approved).assert_ran();
}

/// Execs `call`, checks it was refused (not granted) as an operation other than `fp`.
fn refused_as_another_operation(t: &TestBed, call: &[&str], fp: &str) {
    let out = t.exec(call);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, RULE);
    assert_ne!(event.fingerprint.as_deref(), Some(fp), "{}", event.line);
}

/// `binary` followed by `args`, as a call.
fn call_of<'a>(binary: &'a str, args: &'a [String]) -> Vec<&'a str> {
    [binary]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect()
}

/// The executed file of an exec event, as the kernel encodes it: `(major << 20 | minor, ino)`.
fn file_of(event: &Event) -> (u64, u64) {
    let dev = event.dev.as_deref().expect("dev");
    let (major, minor) = dev.split_once(':').expect("major:minor");
    let major: u64 = major.parse().expect("major");
    let minor: u64 = minor.parse().expect("minor");
    ((major << 20) | minor, event.ino.expect("ino"))
}

/// The agent computes arguments whose kernel lookup hash equals the approved operation's (the
/// hash is invertible) and runs them: before exact binding the kernel let this through as
/// `granted`; now the grant's exact compare refuses it, and the grant stays for the approved
/// operation.
#[test]
fn a_crafted_collision_of_the_lookup_hash_gets_nothing() {
    let mut t = testbed("grant-collision");
    let guarded = start_approving(&mut t);
    let approved = [guarded.as_str(), "delete", "pod", "a"];
    let out = t.exec(&approved);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, RULE);
    let fp = event.fingerprint.clone().expect("fingerprint");
    t.agent().grant(t.name(), &fp, 1, "60s");

    let (dev, ino) = file_of(&event);
    let tail: Vec<String> = approved[1..].iter().map(|a| (*a).to_owned()).collect();
    let target = collision::exec_lookup(dev, ino, &tail);
    let crafted = collision::exec_args_with_lookup(dev, ino, &["delete", "pod"], target);
    eprintln!("crafted {crafted:?}: lookup hash {target:016x}, like {tail:?}");
    refused_as_another_operation(&t, &call_of(&guarded, &crafted), &fp);

    // The approved operation still has its grant.
    t.exec(&approved).assert_ran();
}

/// An exec crafted to have the lookup hash of an approved *connect* gets nothing from the
/// connect's grant, and the connect gets nothing from the exec's grant.
#[test]
fn a_grant_of_one_kind_lets_nothing_of_another_through() {
    let mut t = testbed("grant-kind");
    let guarded = start_approving_with_net(
        &mut t,
        "db",
        "{ cidr: [127.0.9.9/32], ports: [5432] }",
        "approve",
    );
    let mut addr = [0u8; 16];
    addr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 9, 9]);
    let target = collision::connect_lookup(&addr, 5432, 6);
    let out = t.exec(&[guarded.as_str(), "probe"]);
    t.assert_exec_refused(&out);
    let (dev, ino) = file_of(&t.refusal_event(&out, RULE));
    let crafted = collision::exec_args_with_lookup(dev, ino, &["x"], target);
    let call = call_of(&guarded, &crafted);
    let out = t.exec(&call);
    t.assert_exec_refused(&out);
    let fp = t
        .refusal_event(&out, RULE)
        .fingerprint
        .expect("fingerprint");
    t.agent().grant(t.name(), &fp, 0, "60s");

    // Refused is EPERM; let through, the connect to this closed port is refused by the peer.
    t.probe(&["connect", "tcp", "127.0.9.9", "5432"])
        .run()
        .assert_errno(libc::EPERM);
    // The exec grant itself works: exactly its operation passes.
    t.exec(&call).assert_ran();
}

/// argv longer than the kernel captures cannot be bound exactly: the daemon refuses to grant
/// it (the refusal event says `argv_truncated`), so what runs can never differ from what was
/// approved after the capture's end.
#[test]
fn a_command_line_longer_than_the_capture_cannot_be_granted() {
    let mut t = testbed("grant-long");
    let guarded = start_approving(&mut t);
    let long = format!("{}-approved", "p".repeat(600));
    let out = t.exec(&[guarded.as_str(), &long]);
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, RULE);
    assert!(
        event.line.contains("\"argv_truncated\":true"),
        "{}",
        event.line
    );
    let fp = event.fingerprint.clone().expect("fingerprint");
    let out = t.agent().cli(&[
        "grant",
        "--run-dir",
        &t.agent().run_dir(),
        "--agent",
        t.name(),
        "--fingerprint",
        &fp,
        "--ttl",
        "60s",
    ]);
    assert!(
        !out.status.success(),
        "a truncated operation was granted: {out}"
    );
    assert!(
        out.stderr.contains("cannot be approved") && out.stderr.contains("511 bytes"),
        "{out}"
    );
    // Arguments that differ only after the capture are refused too.
    let other = format!("{}-other", "p".repeat(600));
    t.assert_exec_refused(&t.exec(&[guarded.as_str(), &other]));
}

/// `launch --session s1 -- guarded …`: the guarded command is the session's first and only
/// process. Its refusal names the session, and a grant for the session lets the next launch
/// of the same session through (the session's cgroup, to which the grant is bound, stays).
#[test]
fn a_relaunched_one_command_session_uses_its_grant() {
    let mut t = testbed("grant-relaunch");
    let guarded = start_approving(&mut t);
    let command = [guarded.as_str(), "delete", "pod", "a"];
    let out = t.launch("s1", &command, "first");
    assert!(!out.status.success(), "the first launch ran: {out}");
    let event = t.refusal_event(&out, RULE);
    t.assert_in_session(&event, "s1");
    let fp = event.fingerprint.clone().expect("fingerprint");
    t.agent().grant_in(t.name(), Some("s1"), &fp, 1, "60s");

    let out = t.launch("s1", &command, "retry");
    assert!(
        out.status.success(),
        "the relaunch was not let through: {out}"
    );
    let event = t.events().wait_for_pid("exec", out.pid);
    assert_eq!(event.outcome, "granted", "{}", event.line);
    t.assert_in_session(&event, "s1");
}

/// One session floods the kernel with 100 000 refused connects while another session uses a
/// grant: the grant use still gets its record, and the kernel's per-session counts (`status`)
/// say what each session did and how many of its events the log is missing.
#[test]
fn a_refusal_flood_does_not_erase_another_sessions_grant_use() {
    let mut t = testbed("grant-flood");
    let guarded = start_approving_with_net(&mut t, "no-flood", "{ cidr: [127.0.9.10/32] }", "deny");
    let flood_connects: u64 = tests::env::optional(tests::env::FLOOD_CONNECTS).unwrap_or(100_000);
    let probe = t.env().probe_bin.to_string_lossy().into_owned();
    let other = t.group().child("b");
    other.create();
    let in_other = |tag: &str| {
        let mut cmd = other.command(&probe);
        cmd.args(["exec", &guarded, "delete"]);
        t.spawn_command(cmd, tag).wait()
    };
    let out = in_other("b-first");
    t.assert_exec_refused(&out);
    let fp = t
        .refusal_event(&out, RULE)
        .fingerprint
        .expect("fingerprint");
    t.agent().grant_in(t.name(), Some("b"), &fp, 1, "60s");

    let mut cmd = t.group().command(&probe);
    cmd.args([
        "connect-flood",
        "127.0.9.10",
        "9",
        &flood_connects.to_string(),
    ]);
    let flood = t.spawn_command(cmd, "flood");
    // Into the flood: the refusals are well under way when the grant is used.
    thread::sleep(Duration::from_millis(300));
    let retry = in_other("b-retry");
    retry.assert_ran();
    let flooded = flood.wait();
    assert_eq!(
        flooded.stdout.trim(),
        format!("refused={flood_connects} other=0"),
        "{flooded}"
    );
    let event = t.events().wait_for_pid("exec", retry.pid);
    assert_eq!(event.outcome, "granted", "{}", event.line);

    let status = t.agent().status_json();
    let sessions = status["sessions"].as_array().expect("sessions in status");
    let of = |id: u64| {
        sessions
            .iter()
            .find(|s| s["cgroup_id"] == id)
            .unwrap_or_else(|| panic!("no counters of cgroup {id} in {status}"))
    };
    let flooder = of(t.group().id());
    assert_eq!(flooder["refused"], flood_connects, "{flooder}");
    let missing = flooder["events_limited"].as_u64().unwrap_or(0)
        + flooder["events_lost"].as_u64().unwrap_or(0);
    assert!(missing > 0, "a flood this size is rate-limited: {flooder}");
    let granted = of(other.id());
    assert_eq!(
        (granted["granted"].as_u64(), granted["refused"].as_u64()),
        (Some(1), Some(1)),
        "{granted}"
    );
}

/// A grant earned under one rule does not pass the operation once a reloaded policy has
/// another rule (a stricter one, inserted first) guard it under the same rule number.
#[test]
fn a_grant_does_not_pass_under_another_rule_after_a_reload() {
    let mut t = testbed("grant-rule");
    let (guarded, _) = granted(&mut t, 0, "60s");
    let call = [guarded.as_str(), "delete", "pod", "x"];

    let stricter = t.policy(&format!(
        "{}{}",
        exec_rule("stricter", &guarded, "approve"),
        exec_rule(RULE, &guarded, "approve")
    ));
    t.write_policy(&stricter);
    t.agent().reload();
    let out = t.exec(&call);
    t.assert_exec_refused(&out);
    t.refusal_event(&out, "stricter");
}
