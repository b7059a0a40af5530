//! What this daemon protects against, and how, in the mode it runs in: said at start and in
//! `status`, so that nobody takes a guard rail for a wall. Absent protections are listed as
//! absent, with what an agent can do (docs/operations.md, "What is protected").

use agent_common::{policy::group_flags, Mode};

use super::{names::GroupInfo, RootAgents};
use crate::admin_socket::protocol::{Protection, ProtectionState};

/// Copies of guarded binaries: recognised by content when a session wrote them, which the
/// kernel marks in `file_open` (LSM mode) or at the exit of the open system calls (fallback).
fn copied_binaries(mode: Mode, guards: &[&str]) -> Protection {
    use ProtectionState::{Absent, Enforced};
    match mode {
        Mode::Lsm if guards.contains(&"file_open") => item(
            "copied_binaries",
            Enforced,
            "a file a session wrote (or a memfd) that is a copy of a guarded binary, recognised \
             by content, is judged by that binary's rule",
        ),
        Mode::Lsm => item(
            "copied_binaries",
            Absent,
            "the file_open guard is not attached: files sessions write are not marked, and only \
             a memfd copy of a guarded binary is recognised",
        ),
        Mode::Fallback => item(
            "copied_binaries",
            Enforced,
            "a file a session wrote with open(2)/openat(2)/creat(2) (or a memfd) that is a copy \
             of a guarded binary, recognised by content, is judged by that binary's rule; files \
             written through io_uring are not marked (the io_uring protection)",
        ),
    }
}

/// The protections of a daemon in `mode`; `server`: it has a control plane; `guards`: the
/// LSM guards attached (`agent_common::names::GUARDS`); `root`: `--root-agents`; `groups`:
/// the agent groups installed (their accounts, what they permit).
pub fn of(
    mode: Mode,
    server: bool,
    guards: &[&str],
    root: RootAgents,
    groups: &[GroupInfo],
) -> Vec<Protection> {
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
    out.push(item(
        "local_ssh",
        Enforced,
        "built-in rule countersign-local-ssh: TCP connects to this host's ssh servers (port 22 \
         and every port sshd listens on, every address of this host) refused",
    ));
    if server {
        out.push(item(
            "control_plane",
            Enforced,
            "built-in rule countersign-control-plane: every listener and the database",
        ));
    }
    out.extend([
        copied_binaries(mode, guards),
        delegation(&without_accounts(groups)),
    ]);
    out.extend(GUARDED.iter().map(|g| g.state(mode, guards, groups)));
    if mode == Mode::Fallback {
        out.push(match root {
            RootAgents::Refuse => item(
                "root_sessions",
                Enforced,
                "sessions whose command runs as root are refused (--root-agents refuse)",
            ),
            RootAgents::Allow => item(
                "root_sessions",
                Absent,
                "sessions run as root start (--root-agents allow), and what is absent above \
                 is open to them",
            ),
        });
    }
    out
}

fn without_accounts(groups: &[GroupInfo]) -> Vec<&str> {
    groups
        .iter()
        .filter(|g| g.accounts.is_empty())
        .map(|g| g.name.as_str())
        .collect()
}

/// Work an agent hands to processes outside its session is judged when they run as one of its
/// group's accounts.
fn delegation(without_accounts: &[&str]) -> Protection {
    if without_accounts.is_empty() {
        return item(
            "delegation",
            ProtectionState::Enforced,
            "the processes of each group's accounts are judged wherever they run (its systemd \
             --user manager, cron and at jobs, tmux servers, ssh to the same account); work \
             handed to another account's services (the docker daemon, root services) is not",
        );
    }
    item(
        "delegation",
        ProtectionState::Absent,
        &format!(
            "agent groups without accounts ({}): work handed to processes outside the session \
             (systemd --user, tmux, ssh, at/cron) is not judged",
            without_accounts.join(", ")
        ),
    )
}

/// What fallback mode does for a protection the LSM guards give.
enum Fallback {
    /// Nothing: `absent` is said.
    Absent,
    /// Enforced by a program that mode always attaches (or the daemon fails to start).
    Enforced(&'static str),
    /// A watched process entering these syscalls is killed on entry and reported (the call
    /// itself runs; `agent_common::tamper::syscall`): `state` when all of them are attached.
    Killed {
        needs: &'static [&'static str],
        state: ProtectionState,
        how: &'static str,
    },
}

/// A protection the LSM guards give: enforced when every guard it needs is attached.
struct Guarded {
    name: &'static str,
    needs: &'static [&'static str],
    enforced: &'static str,
    absent: &'static str,
    /// What fallback mode does instead.
    fallback: Fallback,
    /// The group flags (`group_flags::PERMIT_*`) that opt a group out of it.
    permits: u32,
}

const GUARDED: &[Guarded] = &[
    Guarded {
        name: "raw_sockets",
        needs: &["socket_create"],
        enforced: "raw and ICMP IPv4/IPv6 sockets refused with EPERM (BPF LSM)",
        absent: "raw and ICMP sockets are not judged: they send to any address",
        fallback: Fallback::Enforced(
            "raw and ICMP IPv4/IPv6 sockets refused with EPERM (cgroup sock_create)",
        ),
        permits: group_flags::PERMIT_PING | group_flags::PERMIT_RAW_SOCKETS,
    },
    Guarded {
        name: "loader",
        needs: &["mmap_file", "file_mprotect"],
        enforced: "a binary an exec rule denies or sends to approval may not be mapped \
                   executable other than by its own exec: the dynamic loader cannot run it \
                   (`ld.so BINARY` fails with EPERM; BPF LSM)",
        absent: "the dynamic loader runs a guarded binary unjudged (`ld.so BINARY`)",
        fallback: Fallback::Killed {
            needs: &["sys_enter_mmap"],
            state: ProtectionState::Detected,
            how: "a process mapping executable with mmap(2) a binary an exec rule denies or \
                  sends to approval (or, as `ld.so FILE`, a file a session wrote) is killed on \
                  entry and reported, before it runs the mapped code (`ld.so BINARY` dies); \
                  mprotect(2) making a readable mapping executable is not seen",
        },
        permits: 0,
    },
    Guarded {
        name: "io_uring",
        needs: &["file_open"],
        enforced: "files a session writes through an io_uring are marked in file_open like \
                   any other (BPF LSM): rings are not refused",
        absent: "files a session writes through an io_uring are not marked: a copy of a \
                 guarded binary written so runs unchecked (in LSM mode without file_open, no \
                 file a session writes is marked)",
        fallback: Fallback::Killed {
            needs: &["sys_enter_io_uring_setup"],
            state: ProtectionState::Enforced,
            how: "a process setting up an io_uring is killed on entry and reported, before it \
                  gets the ring: a ring's opens pass no system call exit, where fallback mode \
                  marks the files a session writes",
        },
        permits: group_flags::PERMIT_IO_URING,
    },
    Guarded {
        name: "packet_sockets",
        needs: &["socket_create"],
        enforced: "AF_PACKET sockets refused with EPERM (BPF LSM)",
        absent: "AF_PACKET sockets are not judged (the cgroup socket hook sees inet sockets \
                 only): a root agent can send any frame",
        fallback: Fallback::Killed {
            needs: &["sys_enter_socket"],
            state: ProtectionState::Detected,
            how: "a process creating an AF_PACKET socket is killed on entry to socket() and \
                  reported (syscall tracepoint)",
        },
        permits: group_flags::PERMIT_PACKET_SOCKETS,
    },
    Guarded {
        name: "host_administration",
        needs: &["capable"],
        enforced: "reboot, kexec, module loading, network administration (routes, \
                   firewall, interfaces) and raw network refused with EPERM even to root: \
                   CAP_SYS_BOOT, CAP_SYS_MODULE, CAP_NET_ADMIN, CAP_NET_RAW (BPF LSM)",
        absent: "a root agent can reboot the host or change its routes and firewall rules",
        fallback: Fallback::Killed {
            needs: &["sys_enter_reboot", "sys_enter_delete_module"],
            state: ProtectionState::Detected,
            how: "reboot and module unloading: the caller is killed on entry and reported, \
                  the call itself runs; network administration (routes, firewall, \
                  interfaces) is not seen",
        },
        permits: group_flags::PERMIT_RAW_SOCKETS | group_flags::PERMIT_PACKET_SOCKETS,
    },
    Guarded {
        name: "cgroup_escape_by_root",
        needs: &[
            "file_open",
            "task_alloc",
            "inode_mkdir",
            "inode_rmdir",
            "inode_rename",
        ],
        enforced: "writing cgroup.procs or cgroup.threads, clone3(CLONE_INTO_CGROUP), \
                   writing any other cgroup control file (cgroup.kill, cgroup.freeze, limits) \
                   and creating, removing or renaming cgroups outside the session's own \
                   subtree refused with EPERM (BPF LSM)",
        absent: "a root agent can move itself out of its session's cgroup, kill or freeze \
                 the daemon's cgroup, or remove an idle agent group's cgroup and create \
                 an unwatched one in its place",
        fallback: Fallback::Killed {
            needs: &["sys_enter_clone3"],
            state: ProtectionState::Absent,
            how: "clone3(CLONE_INTO_CGROUP) kills the caller before the child exists, but \
                  writing cgroup.procs and the other cgroup files, and making or removing \
                  cgroups, are not seen: a root agent can move itself out of its session",
        },
        permits: 0,
    },
    Guarded {
        name: "guarded_mounts",
        needs: &["sb_kern_mount", "move_mount", "sb_umount"],
        enforced: "mounting or unmounting cgroup, bpf, debugfs, tracefs and securityfs \
                   refused with EPERM (BPF LSM)",
        absent: "a root agent can unmount the bpf file system (dropping the pins) or mount \
                 the cgroup hierarchy elsewhere",
        fallback: Fallback::Killed {
            needs: &["sys_enter_mount", "sys_enter_fsopen", "sys_enter_umount"],
            state: ProtectionState::Detected,
            how: "mount(2) and fsopen(2) of cgroup, bpf, debugfs, tracefs or securityfs, and \
                  every unmount by root: the caller is killed on entry and reported, the call \
                  itself runs (an unmounted bpf file system drops the pins); move_mount(2) \
                  is not seen",
        },
        permits: 0,
    },
    Guarded {
        name: "enforcer_tamper_by_root",
        needs: &[
            "bpf",
            "task_kill",
            "ptrace_access_check",
            "inode_unlink",
            "inode_rmdir",
            "inode_rename",
        ],
        enforced: "bpf(), signals and ptrace of the daemon, and removing or renaming pins \
                   refused with EPERM (BPF LSM)",
        absent: "a root agent can kill the daemon, remove the pins or write the maps",
        fallback: Fallback::Killed {
            needs: &[
                "sys_enter_bpf",
                "sys_enter_kill",
                "sys_enter_tkill",
                "sys_enter_tgkill",
                "sys_enter_pidfd_open",
                "sys_enter_ptrace",
                "sys_enter_process_vm_readv",
                "sys_enter_process_vm_writev",
            ],
            state: ProtectionState::Detected,
            how: "bpf() kills the caller on entry, before the descriptor it asked for reaches \
                  it; signals to the daemon (kill, tgkill, its pidfd), ptrace and \
                  process_vm_* of it kill the caller and are reported, but a signal is still \
                  delivered; removing the pins is not seen",
        },
        permits: 0,
    },
    Guarded {
        name: "enforcer_files",
        needs: &[
            "file_open",
            "inode_create",
            "inode_mkdir",
            "inode_mknod",
            "inode_symlink",
            "inode_link",
            "inode_unlink",
            "inode_rmdir",
            "inode_rename",
            "path_truncate",
        ],
        enforced: "writing, creating, removing, renaming, linking or truncating the daemon's \
                   state and run directories, policy files, certificates and binary refused \
                   with EPERM (BPF LSM)",
        absent: "a root agent can write the daemon's state directory, event log and policy files",
        fallback: Fallback::Absent,
        permits: 0,
    },
    Guarded {
        name: "kernel_loading",
        needs: &["kernel_read_file", "kernel_load_data"],
        enforced: "kernel modules, kexec images and firmware loaded by a session refused \
                   with EPERM (BPF LSM)",
        absent: "a root agent can load a kernel module",
        fallback: Fallback::Killed {
            needs: &[
                "sys_enter_init_module",
                "sys_enter_finit_module",
                "sys_enter_kexec_load",
                "sys_enter_kexec_file_load",
            ],
            state: ProtectionState::Detected,
            how: "module and kexec loads kill the caller on entry and are reported; the load \
                  itself runs",
        },
        permits: 0,
    },
    Guarded {
        name: "delegator_sockets",
        needs: &["unix_stream_connect"],
        enforced: "connecting to the unix sockets of services that run work outside the \
                   session (docker, containerd, podman, CRI-O, the system manager and bus, \
                   every account's runtime directory: systemd --user, session buses; tmux \
                   and screen servers) refused with EPERM unless the session created the \
                   listener (BPF LSM)",
        absent: "an agent that can open a delegator's socket (a root agent, or an account \
                 in the docker group) has it run work outside the session, unjudged",
        fallback: Fallback::Absent,
        permits: group_flags::PERMIT_DELEGATORS,
    },
    Guarded {
        name: "delegator_spools",
        needs: &[
            "file_open",
            "inode_create",
            "inode_link",
            "inode_symlink",
            "inode_unlink",
            "inode_rename",
            "path_truncate",
        ],
        enforced: "writing, creating, renaming or removing cron and at jobs (/etc/crontab, \
                   /etc/cron.d and cron.hourly to cron.monthly, /var/spool/cron, \
                   /var/spool/at), which run outside the session, refused with EPERM (BPF LSM)",
        absent: "a root agent can write a cron or at job, which runs outside the session \
                 within a minute",
        fallback: Fallback::Absent,
        permits: group_flags::PERMIT_DELEGATORS,
    },
];

impl Guarded {
    fn state(&self, mode: Mode, attached: &[&str], groups: &[GroupInfo]) -> Protection {
        let mut p = self.attached_state(mode, attached);
        let permitted: Vec<String> = groups
            .iter()
            .filter_map(|g| {
                let opted: Vec<&str> = g
                    .permit
                    .iter()
                    .map(String::as_str)
                    .filter(|n| {
                        group_flags::PERMITS
                            .iter()
                            .any(|(name, bit)| name == n && self.permits & bit != 0)
                    })
                    .collect();
                (!opted.is_empty()).then(|| format!("{} ({})", g.name, opted.join(", ")))
            })
            .collect();
        if !permitted.is_empty() && p.state == ProtectionState::Enforced {
            p.how = format!(
                "{}; permitted by the policy to {}",
                p.how,
                permitted.join(", ")
            );
        }
        p
    }

    fn attached_state(&self, mode: Mode, attached: &[&str]) -> Protection {
        let (needs, state, how) = match (mode, &self.fallback) {
            (Mode::Lsm, _) => (self.needs, ProtectionState::Enforced, self.enforced),
            (Mode::Fallback, Fallback::Absent) => (&[][..], ProtectionState::Absent, self.absent),
            (Mode::Fallback, Fallback::Enforced(how)) => {
                return item(self.name, ProtectionState::Enforced, how)
            }
            (Mode::Fallback, Fallback::Killed { needs, state, how }) => (*needs, *state, *how),
        };
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|g| !attached.contains(g))
            .collect();
        if needs.is_empty() || missing.len() == needs.len() {
            return item(self.name, ProtectionState::Absent, self.absent);
        }
        if missing.is_empty() {
            return item(self.name, state, how);
        }
        let (state, how) = match mode {
            Mode::Lsm => (ProtectionState::Absent, self.absent),
            Mode::Fallback => (state, how),
        };
        let how = format!("{how} (guards not attached: {})", missing.join(", "));
        item(self.name, state, &how)
    }
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

    fn group(name: &str, accounts: &[u32], permit: &[&str]) -> GroupInfo {
        GroupInfo {
            name: name.into(),
            cgroup: format!("/{name}"),
            id: 1,
            monitor: false,
            accounts: accounts.to_vec(),
            permit: permit.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn absent(all: &[Protection]) -> Vec<&str> {
        all.iter()
            .filter(|p| p.state == ProtectionState::Absent)
            .map(|p| p.name.as_str())
            .collect()
    }

    #[test]
    fn what_is_absent_is_said_in_both_modes() {
        let without_guards = [
            "delegation",
            "loader",
            "io_uring",
            "packet_sockets",
            "host_administration",
            "cgroup_escape_by_root",
            "guarded_mounts",
            "enforcer_tamper_by_root",
            "enforcer_files",
            "kernel_loading",
            "delegator_sockets",
            "delegator_spools",
            "root_sessions",
        ];
        assert_eq!(
            absent(&of(
                Mode::Fallback,
                true,
                &[],
                RootAgents::Allow,
                &[group("g", &[], &[])]
            )),
            without_guards
        );
        let all = of(
            Mode::Lsm,
            true,
            agent_common::names::GUARDS,
            RootAgents::Refuse,
            &[group("g", &[64123], &[])],
        );
        assert!(absent(&all).is_empty(), "{:?}", absent(&all));
        assert!(all.iter().any(|p| p.name == "control_plane"));
        assert!(!of(Mode::Lsm, false, &[], RootAgents::Refuse, &[])
            .iter()
            .any(|p| p.name == "control_plane"));
        assert!(of(Mode::Fallback, false, &[], RootAgents::Refuse, &[])[0]
            .how
            .contains("SIGKILL"));
    }

    #[test]
    fn fallback_mode_detects_what_its_syscall_tracepoints_see() {
        let every: Vec<&str> = crate::ebpf::SYSCALL_TRACEPOINTS
            .iter()
            .map(|(tp, _, _)| *tp)
            .collect();
        let with = |tps: &[&str]| of(Mode::Fallback, true, tps, RootAgents::Refuse, &[]);
        let state = |all: &[Protection], name: &str| {
            let p = all.iter().find(|p| p.name == name).expect(name);
            (p.state, p.how.clone())
        };
        let all = with(&every);
        for name in [
            "packet_sockets",
            "host_administration",
            "guarded_mounts",
            "enforcer_tamper_by_root",
            "kernel_loading",
        ] {
            assert_eq!(state(&all, name).0, ProtectionState::Detected, "{name}");
        }
        // clone3 alone does not keep a root agent in its session.
        let (escape, how) = state(&all, "cgroup_escape_by_root");
        assert_eq!(escape, ProtectionState::Absent);
        assert!(how.contains("clone3"), "{how}");
        assert_eq!(state(&all, "raw_sockets").0, ProtectionState::Enforced);
        assert_eq!(state(&all, "io_uring").0, ProtectionState::Enforced);
        // A kernel without modules: no module tracepoints, nothing said to be detected there.
        let no_modules: Vec<&str> = every
            .iter()
            .copied()
            .filter(|tp| !tp.contains("module") && !tp.contains("kexec"))
            .collect();
        assert_eq!(
            state(&with(&no_modules), "kernel_loading").0,
            ProtectionState::Absent
        );
        let (admin, how) = state(&with(&no_modules), "host_administration");
        assert_eq!(admin, ProtectionState::Detected);
        assert!(
            how.contains("not attached: sys_enter_delete_module"),
            "{how}"
        );
    }

    #[test]
    fn a_guard_the_kernel_refused_is_named() {
        let guards: Vec<&str> = agent_common::names::GUARDS
            .iter()
            .copied()
            .filter(|g| *g != "task_kill")
            .collect();
        let all = of(Mode::Lsm, false, &guards, RootAgents::Refuse, &[]);
        let tamper = all
            .iter()
            .find(|p| p.name == "enforcer_tamper_by_root")
            .expect("listed");
        assert_eq!(tamper.state, ProtectionState::Absent);
        assert!(
            tamper.how.ends_with("(guards not attached: task_kill)"),
            "{}",
            tamper.how
        );
    }

    #[test]
    fn what_a_group_permits_is_said() {
        let groups = [
            group("ci", &[64123], &["delegators", "ping"]),
            group("ops", &[64124], &[]),
        ];
        let all = of(
            Mode::Lsm,
            false,
            agent_common::names::GUARDS,
            RootAgents::Refuse,
            &groups,
        );
        let how = |name: &str| {
            let p = all.iter().find(|p| p.name == name).expect("listed");
            assert_eq!(p.state, ProtectionState::Enforced, "{name}");
            p.how.clone()
        };
        assert!(how("delegator_sockets").ends_with("; permitted by the policy to ci (delegators)"));
        assert!(how("raw_sockets").ends_with("; permitted by the policy to ci (ping)"));
        assert!(!how("packet_sockets").contains("permitted"));
    }

    #[test]
    fn every_permit_opens_a_listed_protection() {
        for (name, bit) in group_flags::PERMITS {
            assert!(GUARDED.iter().any(|g| g.permits & bit != 0), "{name}");
        }
    }

    #[test]
    fn every_guard_protects_something() {
        for g in agent_common::names::GUARDS {
            assert!(GUARDED.iter().any(|p| p.needs.contains(g)), "{g}");
        }
    }
}
