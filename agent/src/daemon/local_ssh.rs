//! The built-in rule `countersign-local-ssh`: every agent group's first rules deny TCP
//! connections to this host's ssh servers — every way to reach this host (loopback, the
//! unspecified addresses, each interface's address) on port 22 and on every port an `sshd` or
//! `dropbear` process listens on when the policy is installed. What sshd runs for a login is
//! outside every session: an agent that can log in to this host (its account's keys, or a
//! root agent adding one) would run its work unjudged. Other hosts' ssh stays a policy choice.

use std::{collections::HashSet, net::IpAddr};

use policy::Policy;
use procfs::{
    net::TcpState,
    process::{all_processes, FDTarget},
};

use super::builtin::{deny_rule, reserved, sorted, this_host};

/// Id of the built-in rule, as events and `status` show it.
pub const RULE_ID: &str = "countersign-local-ssh";
const DESCRIPTION: &str =
    "built in: agents may not log in to this host over ssh (what sshd runs is \
                           outside the session)";

/// ssh's port, denied whether or not a server listens on it now (one may start later).
const SSH_PORT: u16 = 22;
/// Names of the ssh servers whose listening ports are found at policy install.
const SERVERS: &[&str] = &["sshd", "dropbear"];

/// The ports the rule denies: 22 and every TCP port an ssh server of this host listens on.
pub fn ports() -> Vec<u16> {
    let mut ports = listening_ports(SERVERS).unwrap_or_else(|e| {
        tracing::warn!(error = %e, rule = RULE_ID, "finding the ports ssh servers listen on: only port 22 is denied");
        Vec::new()
    });
    ports.push(SSH_PORT);
    sorted(ports)
}

/// Puts the rule first in `policy` (`local`: this host's addresses). Refused when the policy
/// uses the reserved id.
pub fn inject(policy: &mut Policy, local: &[IpAddr], ports: Vec<u16>) -> Result<(), String> {
    reserved(
        policy,
        RULE_ID,
        "keeps agents from logging in to this host over ssh",
    )?;
    policy
        .rules
        .insert(0, deny_rule(RULE_ID, DESCRIPTION, this_host(local), ports));
    Ok(())
}

/// The TCP ports in LISTEN state held by processes whose name is one of `names`.
fn listening_ports(names: &[&str]) -> procfs::ProcResult<Vec<u16>> {
    let mut sockets = HashSet::new();
    for p in all_processes()?.flatten() {
        let Ok(stat) = p.stat() else { continue };
        if !names.contains(&stat.comm.as_str()) {
            continue;
        }
        let Ok(fds) = p.fd() else { continue };
        sockets.extend(fds.flatten().filter_map(|fd| match fd.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        }));
    }
    if sockets.is_empty() {
        return Ok(Vec::new());
    }
    let mut entries = procfs::net::tcp()?;
    entries.extend(procfs::net::tcp6()?);
    Ok(entries
        .into_iter()
        .filter(|e| e.state == TcpState::Listen && sockets.contains(&e.inode))
        .map(|e| e.local_address.port())
        .collect())
}

#[cfg(test)]
mod tests {
    use policy::Transport;

    use super::*;
    use crate::daemon::builtin::tests::{connect, policy};

    #[test]
    fn this_hosts_ssh_is_denied_before_any_rule_of_the_policy() {
        let mut p = policy();
        let lan: IpAddr = "192.168.7.9".parse().expect("v4");
        inject(&mut p, &[lan], vec![22, 2222]).expect("inject");
        let rule_of = |addr: &str, port: u16, transport| {
            p.decide_connect(&p.agents[0], &connect(addr, port, transport))
                .rule
                .map(|r| r.id.clone())
        };
        for (addr, port) in [
            ("127.0.0.1", 22),
            ("127.3.4.5", 2222),
            ("::1", 22),
            ("0.0.0.0", 22),
            ("192.168.7.9", 2222),
        ] {
            let rule = rule_of(addr, port, Transport::Tcp);
            assert_eq!(rule.as_deref(), Some(RULE_ID), "{addr}:{port}");
        }
        // Other ports of this host follow the policy; other hosts' ssh too; UDP is no login.
        let local = Some("everything-local");
        assert_eq!(rule_of("127.0.0.1", 8080, Transport::Tcp).as_deref(), local);
        assert_eq!(rule_of("127.0.0.1", 22, Transport::Udp).as_deref(), local);
        assert_eq!(rule_of("192.168.7.10", 22, Transport::Tcp), None);
    }

    #[test]
    fn the_id_is_reserved() {
        let mut p = policy();
        p.rules[0].id = RULE_ID.to_owned();
        let e = inject(&mut p, &[], vec![22]).expect_err("reserved");
        assert!(e.contains("test.yaml:") && e.contains("reserved"), "{e}");
    }

    #[test]
    fn a_listening_server_is_found_by_its_name() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let me = procfs::process::Process::myself()
            .and_then(|p| p.stat())
            .expect("own stat")
            .comm;
        let ports = listening_ports(&[me.as_str()]).expect("procfs");
        assert!(ports.contains(&port), "{port} not in {ports:?}");
        assert!(!listening_ports(&["no-such-server"])
            .expect("procfs")
            .contains(&port));
    }
}
