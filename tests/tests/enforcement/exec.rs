//! Which execs are refused: guarded binaries inside agent cgroups (and their descendants),
//! nothing else; and nothing at all, only reported, in monitor mode.

use tests::{file_identity, net::TcpServer, GroupSettings};

use crate::{exec_rule, network_rule, testbed};

#[test]
fn guarded_exec_is_refused_inside_the_agent_cgroup() {
    let mut t = testbed("exec-refused");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));

    let out = t.exec(&[&guarded, "get", "pods"]);
    t.assert_exec_refused(&out);
    assert_eq!(
        t.probe_log(),
        Vec::<String>::new(),
        "the guarded binary ran"
    );

    let event = t.refusal_event(&out, "no-guarded");
    let (dev, ino) = file_identity(&guarded);
    assert_eq!(
        (event.kind.as_str(), event.action.as_str()),
        ("exec", "deny"),
        "{}",
        event.line
    );
    assert_eq!(
        event.binary.as_deref(),
        Some(guarded.as_str()),
        "binary of {}",
        event.line
    );
    assert_eq!(
        event.argv(),
        [guarded.as_str(), "get", "pods"],
        "argv of {}",
        event.line
    );
    assert_eq!(
        event.dev.as_deref(),
        Some(dev.as_str()),
        "dev of {}",
        event.line
    );
    assert_eq!(event.ino, Some(ino), "ino of {}", event.line);
    assert_eq!(
        event.agent.as_deref(),
        Some(t.name()),
        "agent of {}",
        event.line
    );
    assert_eq!(
        event.cgroup.as_deref(),
        Some(t.group().path()),
        "cgroup of {}",
        event.line
    );
    assert_eq!(
        event.cgroup_id,
        Some(t.group().id()),
        "cgroup_id of {}",
        event.line
    );
}

#[test]
fn unguarded_exec_runs_inside_the_agent_cgroup_without_an_event() {
    let mut t = testbed("exec-unguarded");
    let (guarded, other) = (t.bin("guarded"), t.bin("other"));
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));

    let ran = t.exec(&[&other, "hello"]);
    ran.assert_ran();
    assert!(ran.printed("ran hello"), "{ran}");

    // A later refusal's event proves the log is flowing past the allowed exec.
    let sentinel = t.exec(&[&guarded, "sentinel"]);
    t.assert_exec_refused(&sentinel);
    t.refusal_event(&sentinel, "no-guarded");
    t.events()
        .assert_none_for_pid(ran.pid, "a plain allow produces no event");
}

#[test]
fn guarded_exec_runs_outside_agent_cgroups() {
    let mut t = testbed("exec-outside");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));

    let outside = t.probe(&["exec", &guarded, "outside"]).outside().run();
    outside.assert_ran();
    assert!(outside.printed("ran outside"), "{outside}");

    let sentinel = t.exec(&[&guarded, "sentinel"]);
    t.assert_exec_refused(&sentinel);
    t.refusal_event(&sentinel, "no-guarded");
    t.events().assert_none_for_pid(
        outside.pid,
        "processes outside agent cgroups are not judged",
    );
}

#[test]
fn descendant_cgroup_created_after_start_is_enforced() {
    let mut t = testbed("exec-descendant");
    let (guarded, other) = (t.bin("guarded"), t.bin("other"));
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));

    let deeper = t.sub_cgroup("sub/deeper");
    let out = t
        .probe(&["exec", &guarded, "deep"])
        .in_cgroup(&deeper)
        .run();
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, "no-guarded");
    assert_eq!(
        event.cgroup.as_deref(),
        Some(deeper.path()),
        "cgroup of {}",
        event.line
    );
    assert_eq!(
        event.cgroup_id,
        Some(deeper.id()),
        "cgroup_id of {}",
        event.line
    );
    assert_eq!(
        event.agent.as_deref(),
        Some(t.name()),
        "agent of {}",
        event.line
    );

    t.probe(&["exec", &other, "deep"])
        .in_cgroup(&deeper)
        .run()
        .assert_ran();
}

#[test]
fn launch_runs_the_command_in_an_enforced_session() {
    let mut t = testbed("exec-launch");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));

    let probe = t.env().probe_bin.to_string_lossy().into_owned();
    let out = t.launch("s1", &[&probe, "exec", &guarded, "launched"], "launch");
    t.assert_exec_refused(&out);
    let event = t.refusal_event(&out, "no-guarded");
    t.assert_in_session(&event, "s1");
}

/// An agent does not inherit what would let it act as the person who launched it (their
/// Countersign token, their ssh agent, their kube config): only the allow-list, what
/// `--env` names, and the session's own variables. Asking to pass a COUNTERSIGN_* variable
/// is refused before anything runs.
#[test]
fn launch_hands_the_agent_a_clean_environment() {
    let mut t = testbed("launch-env");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    let run_dir = t.agent().run_dir();
    let launch = |extra: &[&str], tag: &str| {
        let mut cmd = t.agent().command();
        cmd.args(["launch", "--agent", t.name(), "--session", "s-env"])
            .args(extra)
            .args(["--run-dir", &run_dir, "--", "/bin/sh", "-c"])
            .arg(
                "echo token=${COUNTERSIGN_TOKEN-none} ssh=${SSH_AUTH_SOCK-none} \
                 kube=${KUBECONFIG-none} project=${PROJECT-none} \
                 socket=${COUNTERSIGN_AGENT_SOCKET-none} session=$COUNTERSIGN_SESSION",
            )
            .env("COUNTERSIGN_TOKEN", "a-person's-token")
            .env("SSH_AUTH_SOCK", "/run/user/1000/ssh-agent")
            .env("KUBECONFIG", "/home/dave/.kube/prod")
            .env("PROJECT", "web");
        t.spawn_command(cmd, tag).wait()
    };
    let out = launch(&["--env", "PROJECT"], "clean");
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!(
            "token=none ssh=none kube=none project=web socket={run_dir}/agent-api.sock \
             session=s-env\n"
        )
    );
    let refused = launch(&["--env", "COUNTERSIGN_TOKEN"], "token");
    refused.assert_exit(1);
    assert!(
        refused
            .stderr
            .contains("COUNTERSIGN_* variables are never passed to an agent"),
        "{refused}"
    );
    assert!(!refused.stdout.contains("token="), "nothing ran: {refused}");
}

#[test]
fn monitor_mode_refuses_nothing_and_reports_would_refuse() {
    let mut t = testbed("monitor");
    let guarded = t.bin("guarded");
    let server = TcpServer::bind("127.0.2.9", 0);
    let rules = exec_rule("no-guarded", &guarded, "deny")
        + &network_rule("no-net", "{ cidr: [127.0.2.0/24] }", "deny");
    t.start_agent(&t.policy_with(
        GroupSettings {
            monitor: true,
            ..GroupSettings::default()
        },
        &rules,
    ));

    let out = t.exec(&[&guarded, "monitored"]);
    out.assert_ran();
    let event = t.events().wait_for_pid("exec", out.pid);
    assert_eq!(
        (event.outcome.as_str(), event.action.as_str()),
        ("would_refuse", "deny"),
        "{}",
        event.line
    );
    assert_eq!(
        event.rule.as_deref(),
        Some("no-guarded"),
        "rule of {}",
        event.line
    );

    let port = server.port().to_string();
    let conn = t.probe(&["connect", "tcp", "127.0.2.9", &port]).run();
    conn.assert_ok();
    server.assert_accepted();
    let event = t.events().wait_for_pid("connect", conn.pid);
    assert_eq!(event.outcome, "would_refuse", "{}", event.line);
    assert_eq!(
        event.rule.as_deref(),
        Some("no-net"),
        "rule of {}",
        event.line
    );
}

#[test]
fn audit_rule_lets_the_exec_run_and_reports_it() {
    let mut t = testbed("exec-audit");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("watch-guarded", &guarded, "audit")));

    let out = t.exec(&[&guarded, "audited"]);
    out.assert_ran();
    assert!(out.printed("ran audited"), "{out}");
    let event = t.events().wait_for_pid("exec", out.pid);
    let verdict = (event.action.as_str(), event.outcome.as_str());
    assert_eq!(verdict, ("audit", "allowed"), "{}", event.line);
    assert_eq!(
        event.rule.as_deref(),
        Some("watch-guarded"),
        "rule of {}",
        event.line
    );
    assert_eq!(
        event.argv(),
        [guarded.as_str(), "audited"],
        "argv of {}",
        event.line
    );
}

/// An agent nests cgroups below its session to get out of reach of the kernel's bounded walk
/// up to its group: the kernel refuses the cgroup that would be too deep (the daemon set the
/// group's `cgroup.max.depth`), and an exec from the deepest allowed cgroup is still judged.
#[test]
fn a_cgroup_deeper_than_the_group_walk_cannot_be_created() {
    let mut t = testbed("exec-depth");
    let guarded = t.bin("guarded");
    t.start_agent(&t.policy(&exec_rule("no-guarded", &guarded, "deny")));
    let rel = (1..=31)
        .map(|i| format!("d{i}"))
        .collect::<Vec<_>>()
        .join("/");
    let deepest = t.group().child(&rel);
    deepest.create();
    let too_deep = deepest.child("d32");
    let err = std::fs::create_dir(too_deep.dir())
        .expect_err("a cgroup 32 levels below the agent group was created");
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "{err}");

    let probe = t.env().probe_bin.to_string_lossy().into_owned();
    let mut cmd = deepest.command(&probe);
    cmd.args(["exec", &guarded, "deep"]);
    let out = t.spawn_command(cmd, "deep").wait();
    t.assert_exec_refused(&out);
    t.refusal_event(&out, "no-guarded");
}
