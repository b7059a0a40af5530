//! What this daemon protects against, and how, in the mode it runs in: said at start and in
//! `status`, so that nobody takes a guard rail for a wall. Absent protections are listed as
//! absent, with what an agent can do (docs/operations.md, "What is protected").

use agent_common::Mode;

use crate::admin_socket::protocol::{Protection, ProtectionState};

/// The protections of a daemon in `mode`; `server`: it has a control plane.
pub fn of(mode: Mode, server: bool) -> Vec<Protection> {
    use ProtectionState::{Absent, Enforced};
    let exec_how = match mode {
        Mode::Lsm => "refused with EPERM before the exec (BPF LSM)",
        Mode::Fallback => "killed with SIGKILL before the new image runs an instruction",
    };
    let mut out = vec![
        item("exec_rules", Enforced, exec_how),
        item(
            "connect_rules",
            Enforced,
            "TCP/UDP connects and UDP sends refused with EPERM (cgroup socket hooks)",
        ),
        item(
            "argv_rewrite",
            Enforced,
            "arguments rewritten after the judgement: the process is killed",
        ),
        item(
            "launcher_credentials",
            Enforced,
            "launch gives the agent a clean environment (no tokens of its launcher)",
        ),
    ];
    if server {
        out.push(item(
            "control_plane",
            Enforced,
            "built-in rule countersign-control-plane: every listener and the database",
        ));
    }
    out.extend([
        item(
            "copied_binaries",
            Absent,
            "a copy of a guarded binary, a memfd image or the dynamic loader runs it unjudged",
        ),
        item(
            "delegation",
            Absent,
            "work handed to processes outside the session (systemd --user, tmux, docker, ssh, \
             at/cron) is not judged",
        ),
        item(
            "raw_sockets",
            Absent,
            "SOCK_RAW and AF_PACKET sockets are not judged",
        ),
        item(
            "cgroup_escape_by_root",
            Absent,
            "a root agent can move itself out of its session's cgroup",
        ),
        item(
            "enforcer_tamper_by_root",
            Absent,
            "a root agent can kill the daemon, remove the pins or write the maps",
        ),
    ]);
    out
}

fn item(name: &str, state: ProtectionState, how: &str) -> Protection {
    Protection {
        name: name.to_owned(),
        state,
        how: how.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_absent_is_said_in_both_modes() {
        for mode in [Mode::Lsm, Mode::Fallback] {
            let all = of(mode, true);
            let absent: Vec<&str> = all
                .iter()
                .filter(|p| p.state == ProtectionState::Absent)
                .map(|p| p.name.as_str())
                .collect();
            assert_eq!(
                absent,
                [
                    "copied_binaries",
                    "delegation",
                    "raw_sockets",
                    "cgroup_escape_by_root",
                    "enforcer_tamper_by_root"
                ]
            );
            assert!(all.iter().any(|p| p.name == "control_plane"));
        }
        assert!(!of(Mode::Lsm, false)
            .iter()
            .any(|p| p.name == "control_plane"));
        assert!(of(Mode::Fallback, false)[0].how.contains("SIGKILL"));
    }
}
