//! Delegation is not a way out (issue 11, point 0). An agent that hands its work to a process
//! outside its session — its account's systemd manager (`systemd-run --user`), a cron or at
//! job, a tmux server started earlier, `ssh` to the same account — gets a process of its
//! account outside every agent cgroup. A group that names the account (`accounts:`) judges
//! those processes by its rules wherever they run, in both modes; other accounts' processes
//! outside the sessions stay unwatched.

use tests::{net::TcpServer, GroupSettings, TestBed};

use crate::{exec_rule, network_rule, testbed};

/// The agent's own account (no password entry needed: a bare uid).
const AGENT_UID: u32 = 64_123;
/// Somebody else's.
const OTHER_UID: u32 = 64_124;

#[test]
fn work_handed_to_the_agents_account_outside_the_session_is_judged() {
    let mut t = testbed("delegation");
    let guarded = t.bin("guarded");
    let denied = TcpServer::bind("127.0.4.9", 0);
    let rules = exec_rule("no-guarded", &guarded, "deny")
        + &network_rule("no-lab", "{ cidr: [127.0.4.0/24] }", "deny");
    t.start_agent(&t.policy_with(
        GroupSettings {
            accounts: &[AGENT_UID],
            ..GroupSettings::default()
        },
        &rules,
    ));
    assert_eq!(t.agent().protection("delegation"), "enforced");

    // A process of the agent's account that no session holds: what a delegator runs for it.
    let delegated = outside_as(&t, AGENT_UID, &["exec", &guarded, "delegated"]);
    t.assert_exec_refused(&delegated);
    let e = t.refusal_event(&delegated, "no-guarded");
    assert_eq!(e.agent.as_deref(), Some(t.name()), "{}", e.line);
    assert_eq!(e.uid, AGENT_UID, "{}", e.line);

    let port = denied.port().to_string();
    let connect = outside_as(&t, AGENT_UID, &["connect", "tcp", "127.0.4.9", &port]);
    connect.assert_errno(libc::EPERM);
    let e = t.events().wait_for_pid("connect", connect.pid);
    assert_eq!(e.rule.as_deref(), Some("no-lab"), "{}", e.line);

    // Another account's processes outside the sessions are not the agent's.
    let other = outside_as(&t, OTHER_UID, &["exec", &guarded, "someone-else"]);
    other.assert_ran();
    assert!(other.printed("ran someone-else"), "{other}");
    outside_as(&t, OTHER_UID, &["connect", "tcp", "127.0.4.9", &port]).assert_ok();

    // A session launched as an account the group does not name: the launcher says so.
    let launch = |uid: u32| {
        let mut cmd = t.agent().command();
        cmd.args([
            "launch",
            "--agent",
            t.name(),
            "--session",
            &format!("as-{uid}"),
        ])
        .args([
            "--run-dir",
            &t.agent().run_dir(),
            "--user",
            &uid.to_string(),
        ])
        .args(["--", "/bin/sh", "-c", "id -u"]);
        t.spawn_command(cmd, &format!("launch-as-{uid}")).wait()
    };
    let unnamed = launch(OTHER_UID);
    unnamed.assert_success();
    assert!(
        unnamed.stderr.contains(&format!(
            "warning: the command runs as uid {OTHER_UID}, which agent group {} does not name \
             in its accounts (uids {AGENT_UID})",
            t.name()
        )),
        "{unnamed}"
    );
    let named = launch(AGENT_UID);
    named.assert_success();
    assert!(!named.stderr.contains("warning"), "{named}");
}

fn outside_as(t: &TestBed, uid: u32, args: &[&str]) -> tests::Outcome {
    t.probe(args).outside().as_uid(uid).run()
}
