//! What an agent cannot do: reach the control plane, learn about another session, or be
//! answered at all from outside an agent session.

use std::time::Duration;

use crate::World;

#[test]
fn agents_cannot_reach_the_control_plane() {
    let w = World::start("no-server", "", "");
    let port = w.cp.port();
    assert_builtin_refuses(&w, "127.0.0.1", port);
    // The server listens on 127.0.0.1 only, so a connect to this host's LAN address would
    // fail with ECONNREFUSED; EPERM is the built-in rule covering every address of the
    // server's host.
    match lan_address() {
        Some(lan) => assert_builtin_refuses(&w, &lan, port),
        None => eprintln!(
            "(this machine has no route off loopback: the LAN address is covered by the \
             daemon's unit tests of the rule)"
        ),
    }
    // People outside the agent groups still reach it.
    w.cp.cli("alice", &["pending"]).assert_success();
}

/// Panics unless a connect of the session to `addr:port` is refused (EPERM) by the built-in
/// rule. The rule follows what the server announces at registration, so the first tries may
/// come before the daemon re-installed its policy: up to 20 s.
pub fn assert_builtin_refuses(w: &World, addr: &str, port: u16) {
    let port = port.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out =
            w.t.probe(&["connect", "tcp", addr, &port])
                .in_cgroup(&w.session)
                .run();
        if out.errno() == Some(libc::EPERM) || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    out.assert_errno(libc::EPERM);
    let event = w.t.events().wait_for_pid("connect", out.pid);
    assert_eq!(
        event.rule.as_deref(),
        Some("countersign-control-plane"),
        "the built-in rule refused {addr}:{port}: {}",
        event.line
    );
    assert_eq!(event.action, "deny", "{}", event.line);
}

/// This host's address on its default route, if it has one (no packet is sent).
fn lan_address() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

#[test]
fn the_agent_socket_answers_for_the_callers_own_session_only() {
    let w = World::start("sessions", "", "");
    let refused = w.exec(&["delete", "secret-thing"]);
    w.t.assert_exec_refused(&refused);
    w.t.refusal_event(&refused, crate::RULE);

    // The session that was refused learns why.
    let own = w.spawn_agent_cli(&w.session, &["why", "--json"]).wait();
    own.assert_success();
    assert!(own.stdout.contains("secret-thing"), "{own}");

    // Another session of the same group learns nothing about it.
    let other = w.t.sub_cgroup("s2");
    let theirs = w.spawn_agent_cli(&other, &["why", "--json"]).wait();
    assert!(
        !theirs.stdout.contains("secret-thing") && !theirs.stderr.contains("secret-thing"),
        "another session must not see s1's refusal: {theirs}"
    );

    // A process outside every agent group is not answered.
    let mut outside = std::process::Command::new(
        w.t.env()
            .cli_bin
            .as_ref()
            .unwrap_or_else(|| panic!("no cli")),
    );
    outside
        .env("COUNTERSIGN_AGENT_SOCKET", w.t.agent().agent_socket())
        .args(["why"]);
    let out = w.t.spawn_command(outside, "why-outside").wait();
    assert!(!out.status.success(), "{out}");
    assert!(out.stderr.contains("not inside an agent session"), "{out}");

    // Garbage on the socket gets an error line, and the daemon keeps serving.
    garbage(&w.t.agent().agent_socket());
    let again = w.spawn_agent_cli(&w.session, &["why", "--json"]).wait();
    again.assert_success();
}

/// Writes bytes that are not a request and expects an error answer (or a closed socket),
/// never a hang.
fn garbage(socket: &std::path::Path) {
    use std::io::{Read as _, Write as _};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    s.write_all(b"\x00\xff{not json\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.contains("error"),
        "garbage must get an error: {answer}"
    );
}
