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

/// sshd runs what a login asks for outside every session: the built-in rule
/// `countersign-local-ssh` refuses a session's TCP connects to port 22 and to every port an ssh
/// server of this host listens on (found when the policy is installed), at every address of
/// this host, in both modes; the host's other ports stay the policy's.
#[test]
fn a_session_cannot_log_in_to_this_host_over_ssh() {
    let mut t = testbed("local-ssh");
    let sshd = StandInServer::start(&t.install_probe("sshd"), "127.0.0.1");
    let other = TcpServer::bind("127.0.0.1", 0);
    t.start_agent(&t.policy(""));
    assert_eq!(t.agent().protection("local_ssh"), "enforced");
    for (addr, port) in [
        ("127.0.0.1", sshd.port),
        ("127.0.0.1", 22),
        ("127.9.9.9", 22),
        ("0.0.0.0", sshd.port),
    ] {
        let out = t.probe(&["connect", "tcp", addr, &port.to_string()]).run();
        out.assert_errno(libc::EPERM);
        let e = t.events().wait_for_pid("connect", out.pid);
        assert_eq!(
            (e.rule.as_deref(), e.action.as_str()),
            (Some("countersign-local-ssh"), "deny"),
            "{addr}:{port}: {}",
            e.line
        );
    }
    let out = t
        .probe(&["connect", "tcp", "127.0.0.1", &other.port().to_string()])
        .run();
    out.assert_ok();
    other.assert_accepted();
}

/// A TCP server process of the test, outside every session, under the name its binary has.
struct StandInServer {
    child: std::process::Child,
    port: u16,
}

impl StandInServer {
    /// Runs `cs-probe listen ADDR` from `bin` and waits for its port.
    fn start(bin: &str, addr: &str) -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(bin)
            .args(["listen", addr])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the stand-in's port");
        let port = line
            .trim()
            .strip_prefix("port=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{bin} listen printed {line:?}"));
        StandInServer { child, port }
    }
}

impl Drop for StandInServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
