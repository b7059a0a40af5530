//! Nothing is lost: a server that is down, a server that restarts, a daemon that restarts.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::Verdict;

use crate::{finish, request_id, World, RULE};

/// Audit records of kind `attempt` of `guarded delete WHAT` (each test uses a WHAT once).
fn attempts_of(trail: &[Value], what: &str) -> usize {
    trail
        .iter()
        .filter(|r| {
            r["kind"] == "attempt"
                && r["subject"]["argv"]
                    .as_array()
                    .and_then(|a| a.last())
                    .is_some_and(|last| last == what)
        })
        .count()
}

#[test]
fn refusals_while_the_server_is_down_arrive_when_it_is_back() {
    let mut w = World::start("server-down", "", "");
    // A request raised before the server restarts survives the restart.
    let before = w.exec(&["delete", "before"]);
    w.t.assert_exec_refused(&before);
    let kept = request_id(&w.pending_for("alice", &["delete", "before"]));

    w.cp.stop();
    let during = w.exec(&["delete", "during"]);
    w.t.assert_exec_refused(&during);
    w.t.refusal_event(&during, RULE);
    w.cp.start();

    let raised = w.pending_for("alice", &["delete", "during"]);
    assert_eq!(raised["state"], "pending", "{raised}");
    assert!(
        w.cp.pending("alice").iter().any(|r| request_id(r) == kept),
        "the request raised before the restart is still pending"
    );
    // Uploaded once: the daemon's retries after the outage left no duplicates.
    let trail = w.cp.audit();
    assert_eq!(
        attempts_of(&trail, "during"),
        1,
        "attempt records of `delete during`"
    );
    assert_eq!(
        attempts_of(&trail, "before"),
        1,
        "attempt records of `delete before`"
    );
}

#[test]
fn a_daemon_restart_keeps_enforcing_and_loses_nothing() {
    let mut w = World::start("daemon-restart", "", "");
    let first = w.exec(&["delete", "one"]);
    w.t.assert_exec_refused(&first);
    let id = request_id(&w.pending_for("alice", &["delete", "one"]));

    w.t.agent_mut().stop();
    // The pinned programs keep refusing while no daemon runs. Before Linux 5.15 the syscall
    // tracepoints that capture arguments die with the daemon, so in LSM mode an argument rule
    // is then judged on the new image and the exec is killed instead of failing with EPERM
    // (docs/architecture.md): refused either way, never run.
    let while_down = w.exec(&["delete", "two"]);
    if kernel_before(5, 15)
        && while_down.verdict()
            == (Verdict::Killed {
                signal: libc::SIGKILL,
            })
    {
        assert!(
            !while_down.stdout.lines().any(|l| l.starts_with("ran ")),
            "the refused program ran anyway: {while_down}"
        );
    } else {
        w.t.assert_exec_refused(&while_down);
    }
    w.t.agent_mut().start();

    // The refusal made while the daemon was down reaches the approvers too.
    w.pending_for("alice", &["delete", "two"]);
    let mut waiting = w.spawn_exec(&["delete", "one"]);
    waiting.wait_for_stderr("waiting", Duration::from_secs(30));
    w.cp.cli("alice", &["approve", &id, "--once"])
        .assert_success();
    let (out, took) = finish(waiting, Instant::now());
    eprintln!("approval after a daemon restart → retry passed: {took:?}");
    assert_eq!(out.verdict(), Verdict::Ran { code: 0 }, "{out}");

    let trail = w.cp.audit();
    // `delete one`: the first try and the retry through `countersign exec` (its refusal
    // before the grant, then the granted use is a `grant_use` record).
    assert_eq!(
        attempts_of(&trail, "one"),
        2,
        "attempt records of `delete one`"
    );
    assert_eq!(
        attempts_of(&trail, "two"),
        1,
        "attempt records of `delete two`"
    );
}

/// Whether the running kernel is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) < (major, minor)
}

/// An approval given after the daemon restarted still finds the exact operation it names (the
/// daemon keeps the operations it may be asked to grant in its state directory), and the
/// agent's next try passes — no retry had to raise the operation again first.
#[test]
fn an_approval_after_a_daemon_restart_installs_its_grant() {
    let mut w = World::start("restart-approval", "", "");
    w.t.assert_exec_refused(&w.exec(&["delete", "kept"]));
    let id = request_id(&w.pending_for("alice", &["delete", "kept"]));
    w.t.agent_mut().stop();
    w.t.agent_mut().start();
    w.cp.cli("alice", &["approve", &id, "--once"])
        .assert_success();
    w.until_it_runs(|| w.exec(&["delete", "kept"]));
}

/// A daemon that died is reported to the auditors once: the next daemon's first registration
/// carries the outage (`login` record, `details.previous_outage`); its reconnections after a
/// server restart do not repeat it, so one death reads as one gap.
#[test]
fn a_dead_daemon_is_reported_to_the_auditors_once() {
    let mut w = World::start("outage-once", "", "");
    w.t.agent_mut().kill();
    w.t.agent_mut().start();
    let logins = |w: &World| -> Vec<Value> {
        w.cp.audit()
            .into_iter()
            .filter(|r| r["kind"] == "login" && r["actor"]["kind"] == "host")
            .collect()
    };
    let outage = |r: &Value| r["subject"]["details"]["previous_outage"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let reported = loop {
        if let Some(r) = logins(&w).into_iter().find(|r| outage(r).is_object()) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no login record reports the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(outage(&reported)["clean"], false, "{reported}");
    let before = logins(&w).len();
    w.cp.stop();
    w.cp.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    let all = loop {
        let all = logins(&w);
        if all.len() > before {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not register again"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let with_outage = all.iter().filter(|r| outage(r).is_object()).count();
    assert_eq!(
        with_outage, 1,
        "login records reporting the outage: {all:?}"
    );
    assert!(outage(all.last().expect("a login")).is_null(), "{all:?}");
}
