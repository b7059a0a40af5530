//! The daemon's life: policy reloads (with no window for a refused exec), restarts (the
//! pinned programs keep enforcing), unload, and `policy check`'s errors.

use std::{
    fs,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use tests::net::TcpServer;

use crate::{exec_rule, network_rule, testbed};

#[test]
fn reload_applies_a_changed_policy() {
    let mut t = testbed("reload");
    let (guarded, other) = (t.bin("guarded"), t.bin("other"));
    let before = exec_rule("no-guarded", &guarded, "deny");
    let after = before.clone() + &exec_rule("no-other", &other, "deny");
    t.start_agent(&t.policy(&before));
    t.exec(&[&other, "before"]).assert_ran();

    t.write_policy(&t.policy(&after));
    t.agent().reload();
    let out = t.exec(&[&other, "after"]);
    t.assert_exec_refused(&out);
    t.refusal_event(&out, "no-other");
    let out = t.exec(&[&guarded, "after"]);
    t.assert_exec_refused(&out);
    t.refusal_event(&out, "no-guarded");

    t.write_policy(&t.policy(&before));
    t.agent().reload();
    t.exec(&[&other, "reverted"]).assert_ran();
}

#[test]
fn no_refused_exec_slips_through_during_reloads() {
    let mut t = testbed("reload-window");
    let (guarded, other) = (t.bin("guarded"), t.bin("other"));
    // Two policies that both refuse `guarded`, by rules at different positions.
    let a = t.policy(&exec_rule("no-guarded", &guarded, "deny"));
    let b = t.policy(
        &(exec_rule("no-other", &other, "deny") + &exec_rule("no-guarded", &guarded, "deny")),
    );
    t.start_agent(&a);

    let stop = AtomicBool::new(false);
    let (attempts, slipped) = thread::scope(|s| {
        let looper = s.spawn(|| {
            let (mut attempts, mut slipped) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let out = t.exec(&[&guarded, "during-reload"]);
                attempts += 1;
                if !out.is_exec_refused(t.mode()) {
                    slipped.push(out.to_string());
                }
            }
            (attempts, slipped)
        });
        for (i, policy) in [&b, &a, &b, &a, &b, &a].into_iter().enumerate() {
            thread::sleep(Duration::from_millis(150));
            t.write_policy(policy);
            // Both ways of reloading: the CLI (synchronous) and SIGHUP.
            if i % 2 == 0 {
                t.agent().reload();
            } else {
                t.agent().signal(libc::SIGHUP);
            }
        }
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        looper.join().expect("the exec loop panicked")
    });
    eprintln!("{attempts} refused execs during 6 reloads");
    let shown: Vec<&str> = slipped.iter().take(5).map(String::as_str).collect();
    assert!(
        slipped.is_empty(),
        "{} refused execs ran during a reload, e.g.:\n{}",
        slipped.len(),
        shown.join("\n")
    );
    assert!(
        attempts >= 6,
        "only {attempts} execs during the reloads: no overlap tested"
    );
    t.agent().assert_mode(t.mode());
}

#[test]
fn enforcement_survives_a_daemon_restart() {
    let mut t = testbed("restart");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    let before = t.exec(&[&guarded, "before"]);
    t.assert_exec_refused(&before);
    t.refusal_event(&before, "no-guarded");

    let status = t.agent_mut().stop();
    assert!(
        status.success(),
        "the daemon must exit cleanly on SIGTERM: {status}"
    );
    let down = t.exec(&[&guarded, "while-down"]);
    t.assert_exec_refused(&down);

    t.agent_mut().start();
    let after = t.exec(&[&guarded, "after"]);
    t.assert_exec_refused(&after);
    t.refusal_event(&after, "no-guarded");
    // The ring buffer is pinned: what happened while the daemon was down is not lost.
    t.refusal_event(&down, "no-guarded");
    assert!(
        !t.events().of_pid(before.pid).is_empty(),
        "the restart lost earlier events"
    );
}

/// Issue 11, point 4: a daemon that died (OOM, an admin's mistake) leaves enforcement pinned,
/// and the next one says how long nobody was there and whether anything was lost.
#[test]
fn the_next_daemon_reports_the_time_without_one() {
    let mut t = testbed("outage");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    let outage = |t: &tests::TestBed| t.agent().status_json()["previous_outage"].clone();
    let who = |o: &serde_json::Value| {
        let clean = o["clean"].as_bool();
        (o["pid"].as_u64(), clean, o["events_lost"].as_u64())
    };
    assert!(outage(&t).is_null(), "the first daemon had no predecessor");

    let first = t.agent().pid().expect("running");
    t.agent_mut().stop();
    t.agent_mut().start();
    let o = outage(&t);
    assert_eq!(who(&o), (Some(first as u64), Some(true), Some(0)), "{o}");

    let second = t.agent().pid().expect("running");
    t.agent_mut().kill();
    let down = t.exec(&[&guarded, "while-dead"]);
    t.assert_exec_refused(&down);
    std::thread::sleep(std::time::Duration::from_secs(2));
    t.agent_mut().start();
    let o = outage(&t);
    assert_eq!(who(&o), (Some(second as u64), Some(false), Some(0)), "{o}");
    let seconds = o["seconds"].as_u64().expect("seconds");
    assert!((2..60).contains(&seconds), "{o}");
    let text = t
        .agent()
        .cli(&["status", "--run-dir", &t.agent().run_dir()]);
    assert!(
        text.stdout
            .contains(&format!("previous daemon: pid {second} DIED at")),
        "{text}"
    );
    // What was refused while nobody ran is in the log of the next one.
    t.refusal_event(&down, "no-guarded");
}

#[test]
fn unload_stops_all_enforcement() {
    let mut t = testbed("unload");
    let guarded = t.bin("guarded");
    let server = TcpServer::bind("127.0.2.11", 0);
    let rules = exec_rule("no-guarded", &guarded, "deny")
        + &network_rule("no-net", "{ cidr: [127.0.2.0/24] }", "deny");
    t.start_agent(&t.policy(&rules));
    let port = server.port().to_string();
    t.probe(&["connect", "tcp", "127.0.2.11", &port])
        .run()
        .assert_errno(libc::EPERM);

    t.agent_mut().stop();
    let out = t.agent().unload();
    assert!(out.status.success(), "unload failed: {out}");
    let bpffs = &t.agent().dirs().bpffs;
    let left = fs::read_dir(bpffs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "pins left in {} after unload", bpffs.display());

    t.exec(&[&guarded, "unloaded"]).assert_ran();
    t.probe(&["connect", "tcp", "127.0.2.11", &port])
        .run()
        .assert_ok();
    server.assert_accepted();
}

#[test]
fn policy_check_names_file_line_and_rule() {
    let t = testbed("policy-check");
    let good = t.policy(&exec_rule("no-guarded", &t.bin("guarded"), "deny"));
    fs::write(t.dir().join("good.yaml"), &good).expect("write good.yaml");
    let out = t
        .agent()
        .cli_in(&["policy", "check", "good.yaml"], Some(t.dir()));
    assert!(out.status.success(), "a valid policy must pass: {out}");

    let guarded = t.bin("guarded");
    let broken = [
        (
            "broken-cidr",
            "    network: { cidr: [10.0.0.0/33] }\n    action: deny\n".to_string(),
        ),
        (
            "broken-action",
            format!("    exec: {{ binary: \"{guarded}\" }}\n    action: maybe\n"),
        ),
    ];
    for (id, body) in broken {
        let first = good.lines().count() + 1; // the rule starts right after the valid policy
        let bad = format!("{good}  - id: {id}\n{body}");
        let last = bad.lines().count();
        fs::write(t.dir().join("bad.yaml"), &bad).expect("write bad.yaml");
        let out = t
            .agent()
            .cli_in(&["policy", "check", "bad.yaml"], Some(t.dir()));
        assert!(
            !out.status.success(),
            "policy check must reject rule {id}: {out}\n{bad}"
        );
        let text = format!("{}{}", out.stdout, out.stderr);
        let line = text
            .lines()
            .filter(|l| l.contains(&format!("rule '{id}'")))
            .find_map(error_line)
            .unwrap_or_else(|| panic!("no `bad.yaml:LINE: rule '{id}': …` error: {out}"));
        assert!(
            (first..=last).contains(&line),
            "line {line} is not in rule {id} (lines {first}-{last}): {out}"
        );
    }
}

/// LINE of a `bad.yaml:LINE: …` message.
fn error_line(message: &str) -> Option<usize> {
    let rest = &message[message.find("bad.yaml:")? + "bad.yaml:".len()..];
    rest.split(':').next()?.trim().parse().ok()
}
