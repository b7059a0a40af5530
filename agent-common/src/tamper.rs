//! Attempts on the enforcement itself by a watched process (LSM mode): leaving the session,
//! blinding or unloading the programs, reaching around the socket hooks. Each is refused by
//! the kernel programs of `agent-ebpf/src/guard` and reported as an event of kind
//! [`crate::event::EventKind::Tamper`], whose [`crate::event::Event::detail`] is a [`Tamper`]
//! and whose `ino`/`dev`/`path` say the target (see [`Tamper`]'s variants).

/// What was tried. Stable numbers and names: they are stored in event logs.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tamper {
    /// Opened a cgroup's `cgroup.procs` or `cgroup.threads` for writing (moving a process
    /// between cgroups). `ino`: cgroup id of the directory; `path`: the file name.
    CgroupMove = 1,
    /// `clone3(CLONE_INTO_CGROUP)`. `dev`: the clone flags.
    CloneIntoCgroup = 2,
    /// Mounted a cgroup, bpf, debugfs, tracefs or securityfs file system. `ino`: its magic.
    Mount = 3,
    /// Unmounted one. `ino`: its magic.
    Unmount = 4,
    /// Called `bpf()`. `ino`: the command.
    Bpf = 5,
    /// Sent a signal to the daemon. `ino`: target pid; `dev`: the signal.
    Signal = 6,
    /// `ptrace`, `process_vm_*`, `pidfd_getfd` or `/proc/PID/mem` on the daemon. `ino`: target
    /// pid; `dev`: the ptrace access mode.
    Ptrace = 7,
    /// Loaded a kernel module, a kexec image, firmware or a security policy. `ino`: the
    /// kernel's `kernel_read_file_id`/`kernel_load_data_id`; `dev`: 0 from a file, 1 from memory.
    KernelLoad = 8,
    /// Created a packet socket or a raw IPv4/IPv6 socket. `family`, `protocol`; `dev`: type.
    RawSocket = 9,
    /// Unlinked or renamed a file of a bpf file system (the pins). `ino`: its inode; `path`:
    /// its name.
    PinRemoval = 10,
    /// Wrote, created, removed, renamed, linked or truncated one of the daemon's files (state
    /// and run directories, policy files, certificates, its binary; [`GuardedFile`]). `dev`,
    /// `ino`: the file's identity (0 for a name that does not exist yet); `path`: its name.
    EnforcerFile = 11,
    /// Used a capability that no session may use ([`capability`]): reboot and kexec
    /// (`CAP_SYS_BOOT`), routes, firewall and interfaces (`CAP_NET_ADMIN`), raw network
    /// (`CAP_NET_RAW`), modules (`CAP_SYS_MODULE`). `ino`: the capability.
    Capability = 12,
    /// Opened another cgroup control file for writing (`cgroup.kill`, `cgroup.freeze`,
    /// `memory.max`, `cgroup.subtree_control`…): killing, freezing or starving the daemon's
    /// cgroup needs no signal. `ino`: cgroup id of the directory; `path`: the file name.
    CgroupWrite = 13,
    /// Connected to the unix socket of a delegator: a service that runs work outside the
    /// session for whoever connects ([`delegator`]: the docker, containerd and podman APIs,
    /// the system and user managers, the system bus). `path`: the name the listener bound;
    /// `dev`: [`delegator::ABSTRACT`] for an abstract name (its leading NUL left out of
    /// `path`). Or wrote a delegator's spool (cron, at; `dev`: [`delegator::SPOOL`], `ino`:
    /// the guarded file or directory, `path`: the entry's name).
    Delegator = 14,
    /// Created, removed or renamed a cgroup outside the caller's own cgroup subtree (removing
    /// an empty agent group's cgroup and creating it again would give it an id nobody
    /// watches). `ino`: cgroup id of the parent directory; `path`: the cgroup's name; `dev`:
    /// [`cgroup_dir::CREATE`] or [`cgroup_dir::REMOVE`].
    CgroupDir = 15,
    /// Mapped executable (`mmap` or `mprotect` with `PROT_EXEC`), other than as its own
    /// program, a binary that an exec rule denies or sends to approval: the dynamic loader
    /// running it (`ld.so BINARY`) would run it unjudged. `dev`, `ino`: the binary; `path`:
    /// its name.
    Loader = 16,
    /// Fallback mode: set up an io_uring. Its opens pass no system call exit, where fallback
    /// mode marks the files a session opens for writing, so a file written through a ring
    /// would not be checked by content when executed. `ino`: the entries asked for.
    IoUring = 17,
}

crate::verdict::names!(Tamper {
    CgroupMove => "cgroup_move",
    CloneIntoCgroup => "clone_into_cgroup",
    Mount => "mount",
    Unmount => "unmount",
    Bpf => "bpf",
    Signal => "signal",
    Ptrace => "ptrace",
    KernelLoad => "kernel_load",
    RawSocket => "raw_socket",
    PinRemoval => "pin_removal",
    EnforcerFile => "enforcer_file",
    Capability => "capability",
    CgroupWrite => "cgroup_write",
    Delegator => "delegator",
    CgroupDir => "cgroup_dir",
    Loader => "loader",
    IoUring => "io_uring",
});

impl Tamper {
    /// The attempt numbered `v` in an event; None for a number this build does not know.
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| *t as u32 == v)
    }

    /// The group flags (`crate::policy::group_flags::PERMIT_*`) any of which lets this attempt
    /// through for a group that opted in; 0 for an attempt no group may make. `family`,
    /// `ty`, `protocol`, `ino`: as in the event ([`Tamper`]'s variants).
    pub const fn permitted_by(self, family: u16, ty: u16, protocol: u16, ino: u64) -> u32 {
        use crate::policy::group_flags::*;
        match self {
            Tamper::RawSocket if family == socket::AF_PACKET => PERMIT_PACKET_SOCKETS,
            Tamper::RawSocket if socket::ping(family, ty, protocol) => PERMIT_PING,
            Tamper::RawSocket => PERMIT_RAW_SOCKETS,
            // Raw and packet sockets both need the capability (ping sockets do not).
            Tamper::Capability if ino == capability::NET_RAW as u64 => {
                PERMIT_RAW_SOCKETS | PERMIT_PACKET_SOCKETS
            }
            Tamper::Delegator => PERMIT_DELEGATORS,
            Tamper::IoUring => PERMIT_IO_URING,
            _ => 0,
        }
    }
}

/// Capabilities (uapi `linux/capability.h`) that no process of a session may use, root or
/// not: each one changes the host for everyone or reaches around the hooks.
pub mod capability {
    /// Routes, firewall rules, interfaces, traffic control (netlink and ioctl alike).
    pub const NET_ADMIN: i32 = 12;
    /// Raw and packet sockets, `SO_MARK`, transparent proxying: ways around the socket hooks
    /// (the sockets themselves are also refused by `socket_create`).
    pub const NET_RAW: i32 = 13;
    /// Loading and unloading kernel modules (the loads are also refused by `kernel_load`).
    pub const SYS_MODULE: i32 = 16;
    /// `reboot(2)` and `kexec_load(2)`.
    pub const SYS_BOOT: i32 = 22;

    /// Whether `cap` is refused to a watched process.
    pub const fn refused(cap: i32) -> bool {
        matches!(cap, NET_ADMIN | NET_RAW | SYS_MODULE | SYS_BOOT)
    }

    /// The capability's name, for events.
    pub const fn name(cap: u64) -> Option<&'static str> {
        match cap {
            12 => Some("CAP_NET_ADMIN"),
            13 => Some("CAP_NET_RAW"),
            16 => Some("CAP_SYS_MODULE"),
            22 => Some("CAP_SYS_BOOT"),
            _ => None,
        }
    }
}

/// Sockets that reach around the connect and sendmsg hooks, which see only TCP and UDP:
/// packet sockets, raw IPv4/IPv6 sockets, and ICMP ("ping") sockets, whose `sendto` carries a
/// payload to any address without passing the sendmsg hook.
pub mod socket {
    pub const AF_INET: u16 = 2;
    pub const AF_INET6: u16 = 10;
    pub const AF_PACKET: u16 = 17;
    pub const SOCK_DGRAM: u16 = 2;
    pub const SOCK_RAW: u16 = 3;
    /// Linux's obsolete packet interface on an inet socket.
    pub const SOCK_PACKET: u16 = 10;
    pub const IPPROTO_ICMP: u16 = 1;
    pub const IPPROTO_ICMPV6: u16 = 58;

    /// Whether a socket of `family`, `ty` (the type bits only) and `protocol` reaches around
    /// the socket hooks.
    pub const fn unhooked(family: u16, ty: u16, protocol: u16) -> bool {
        match family {
            AF_PACKET => true,
            AF_INET | AF_INET6 => ty == SOCK_RAW || ty == SOCK_PACKET || ping(family, ty, protocol),
            _ => false,
        }
    }

    /// Whether the socket is an ICMP datagram ("ping") socket.
    pub const fn ping(family: u16, ty: u16, protocol: u16) -> bool {
        ty == SOCK_DGRAM
            && ((family == AF_INET && protocol == IPPROTO_ICMP)
                || (family == AF_INET6 && protocol == IPPROTO_ICMPV6))
    }
}

/// What a [`Tamper::CgroupDir`] attempt did (its `dev`).
/// `Tamper::Loader`: what was mapped executable, in the event's `protocol` field.
pub mod loader {
    /// A binary an exec rule denies or sends to approval.
    pub const GUARDED: u16 = 0;
    /// A file a session wrote (or a memfd), mapped by the dynamic loader run as a program
    /// (`ld.so FILE`): the loader guard cannot read its content, so it is not run that way.
    pub const WRITTEN: u16 = 1;
}

pub mod cgroup_dir {
    pub const CREATE: u64 = 0;
    /// rmdir, or the old name of a rename.
    pub const REMOVE: u64 = 1;
}

/// Delegators: services that run work for whoever connects to their unix socket, outside the
/// connecting process's cgroup (and so outside every rule). A watched process may not connect
/// to them. They are known by the name their listening socket was bound to, which the
/// listener chose and the connecting agent cannot change: a symlink, a hard link, a relative
/// path or `/proc/self/root/…` to the socket reaches the same listener and the same name.
pub mod delegator {
    /// Longest name a unix socket can bind (`sizeof(sun_path)`).
    pub const NAME_MAX: usize = 108;
    /// `dev` of a [`super::Tamper::Delegator`] event: a unix socket's abstract name.
    pub const ABSTRACT: u64 = 1;
    /// `dev` of a [`super::Tamper::Delegator`] event: an entry of a spool (cron, at).
    pub const SPOOL: u64 = 2;

    /// The key of the pinned `DELEGATORS` longest-prefix-match trie for a name: a name ending
    /// with `/` is a directory and matches every socket bound below it (its bytes are the
    /// prefix); a name ending with `*` matches every name that starts with what comes before
    /// the `*` (`/tmp/tmux-*`: every account's tmux directory); any other name matches itself
    /// alone (its bytes and the NUL that ends a bound path name). The kernel side looks up the
    /// whole bound name, zero-padded. None for a name too long to be bound or holding a NUL.
    pub fn key(name: &str) -> Option<(u32, [u8; NAME_MAX])> {
        let (bytes, len) = match name.strip_suffix('*') {
            Some(prefix) => (prefix.as_bytes(), prefix.len()),
            None if name.ends_with('/') => (name.as_bytes(), name.len()),
            None => (name.as_bytes(), name.len() + 1),
        };
        if bytes.is_empty() || len > NAME_MAX || bytes.contains(&0) {
            return None;
        }
        let mut data = [0u8; NAME_MAX];
        data[..bytes.len()].copy_from_slice(bytes);
        Some((len as u32 * 8, data))
    }
}

/// A file or directory of the daemon's, by the identity the kernel gives it (`dev` in the
/// kernel's encoding, `major << 20 | minor`): the key of the pinned `GUARDED_FILES` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuardedFile {
    pub dev: u64,
    pub ino: u64,
}

/// Values of `GUARDED_FILES`: what the identity is.
pub mod guarded {
    /// A file: it may not be written, truncated, removed, renamed or linked.
    pub const FILE: u32 = 1;
    /// A directory: nothing in it may be written, created, removed, renamed or linked, and
    /// nothing may be renamed into it.
    pub const DIRECTORY: u32 = 2;
    /// A delegator's spool file (`/etc/crontab`): guarded like [`FILE`], reported as a
    /// [`super::Tamper::Delegator`] attempt: what is written there runs outside the session.
    pub const SPOOL_FILE: u32 = 3;
    /// A delegator's spool directory (`/etc/cron.d`, `/var/spool/cron/crontabs`): guarded
    /// like [`DIRECTORY`], reported as a [`super::Tamper::Delegator`] attempt.
    pub const SPOOL_DIRECTORY: u32 = 4;

    /// Whether nothing may change in a directory of this kind.
    pub const fn directory(kind: u32) -> bool {
        kind == DIRECTORY || kind == SPOOL_DIRECTORY
    }

    /// Whether this kind belongs to a delegator, not to the daemon.
    pub const fn spool(kind: u32) -> bool {
        kind == SPOOL_FILE || kind == SPOOL_DIRECTORY
    }
}

const _: () = assert!(core::mem::size_of::<GuardedFile>() == 16);

/// Fallback mode's stand-in for the guards: without BPF LSM no program can refuse a system
/// call, so a watched process that enters one of these is killed on entry (`SIGKILL`) and the
/// attempt reported as the [`Tamper`] LSM mode would report. The call itself still runs; what
/// it returns never reaches the process. Values of the pinned `SYSCALL_GUARDS` map, keyed by
/// syscall number (the daemon writes its architecture's numbers: the kernel side needs none).
pub mod syscall {
    /// `bpf(cmd, …)`: any command.
    pub const BPF: u32 = 1;
    /// `kill(pid, sig)`: to the daemon, its process group, or every process (`-1`).
    pub const KILL: u32 = 2;
    /// `tkill(tid, sig)` / `tgkill(tgid, tid, sig)`: to the daemon.
    pub const TKILL: u32 = 3;
    pub const TGKILL: u32 = 4;
    /// `ptrace(request, pid, …)`, `process_vm_readv/writev(pid, …)` on the daemon.
    pub const PTRACE: u32 = 5;
    pub const PROCESS_VM: u32 = 6;
    /// `pidfd_open(pid, …)` of the daemon: the handle `pidfd_send_signal` needs.
    pub const PIDFD_OPEN: u32 = 7;
    /// Module and kexec loads, from memory or from a file; module unloads.
    pub const INIT_MODULE: u32 = 8;
    pub const FINIT_MODULE: u32 = 9;
    pub const DELETE_MODULE: u32 = 10;
    pub const KEXEC_LOAD: u32 = 11;
    pub const KEXEC_FILE_LOAD: u32 = 12;
    pub const REBOOT: u32 = 13;
    /// `mount(…, type, …)` and `fsopen(type, …)` of a guarded file system ([`super::magic`]).
    pub const MOUNT: u32 = 14;
    pub const FSOPEN: u32 = 15;
    /// `umount2(target, …)` by a root caller: the file system is not known on entry.
    pub const UMOUNT: u32 = 16;
    /// `socket(AF_PACKET, …)` (raw inet sockets meet the cgroup `sock_create` hook instead).
    pub const SOCKET: u32 = 17;
    /// `clone3` with `CLONE_INTO_CGROUP`: with the kill pending, the kernel makes no child.
    pub const CLONE3: u32 = 18;
    /// `mmap` with `PROT_EXEC` of a file the loader guard refuses (`super::loader`): the
    /// process dies before it runs the mapped code.
    pub const MMAP: u32 = 19;
    /// `io_uring_setup(entries, params)`: fallback mode cannot mark what a ring opens.
    pub const IO_URING_SETUP: u32 = 20;

    /// `CLONE_INTO_CGROUP` (uapi `linux/sched.h`).
    pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    /// `PTRACE_MODE_ATTACH_REALCREDS`: the access mode the kernel checks for `ptrace` attach and
    /// `process_vm_*`, reported as LSM mode reports it.
    pub const PTRACE_ATTACH_MODE: u64 = 0x12;
    /// Target pid of a `kill(-1, …)`: every process the caller may signal.
    pub const EVERY_PROCESS: u64 = u32::MAX as u64;

    /// The magic of a guarded file system named `name` as a mount type (zero-padded, as the
    /// kernel side reads it from the caller), or 0.
    #[inline(always)]
    pub fn fs_magic(name: &[u8; 16]) -> u64 {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&name[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let (lo, hi) = (word(0), word(8));
        for (words, magic) in FS_NAMES {
            if words == [lo, hi] {
                return magic;
            }
        }
        0
    }

    /// A type name as two little-endian words, zero-padded.
    const fn words(s: &[u8]) -> [u64; 2] {
        let mut out = [0u64; 2];
        let mut i = 0;
        while i < s.len() {
            out[i / 8] |= (s[i] as u64) << (8 * (i % 8));
            i += 1;
        }
        out
    }

    const FS_NAMES: [([u64; 2], u64); 6] = {
        use super::magic::*;
        [
            (words(b"cgroup"), CGROUP),
            (words(b"cgroup2"), CGROUP2),
            (words(b"bpf"), BPF_FS),
            (words(b"debugfs"), DEBUGFS),
            (words(b"tracefs"), TRACEFS),
            (words(b"securityfs"), SECURITYFS),
        ]
    };
}

/// File system magics (uapi `linux/magic.h`) of the file systems a watched process may not
/// mount or unmount: they hold the session's cgroups, the pins, or the kernel's tracing and
/// security controls.
pub mod magic {
    pub const CGROUP: u64 = 0x0027_e0eb;
    pub const CGROUP2: u64 = 0x6367_7270;
    pub const BPF_FS: u64 = 0xcafe_4a11;
    pub const DEBUGFS: u64 = 0x6462_6720;
    pub const TRACEFS: u64 = 0x7472_6163;
    pub const SECURITYFS: u64 = 0x7363_6673;

    /// Whether `m` is a cgroup file system (v1 or v2).
    pub const fn cgroup(m: u64) -> bool {
        m == CGROUP || m == CGROUP2
    }

    /// Whether `m` is one of the guarded file systems.
    pub const fn guarded(m: u64) -> bool {
        matches!(
            m,
            CGROUP | CGROUP2 | BPF_FS | DEBUGFS | TRACEFS | SECURITYFS
        )
    }

    /// The file system's name, for events.
    pub const fn name(m: u64) -> Option<&'static str> {
        match m {
            CGROUP => Some("cgroup"),
            CGROUP2 => Some("cgroup2"),
            BPF_FS => Some("bpf"),
            DEBUGFS => Some("debugfs"),
            TRACEFS => Some("tracefs"),
            SECURITYFS => Some("securityfs"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegator_keys_cover_a_directory_or_one_name() {
        let (bits, data) = delegator::key("/run/user/").expect("a directory");
        assert_eq!((bits, &data[..10]), (80, &b"/run/user/"[..]));
        let (bits, data) = delegator::key("/run/docker.sock").expect("a name");
        // The NUL is part of the prefix: `/run/docker.sock.old` is another name.
        assert_eq!((bits, &data[..17]), (136, &b"/run/docker.sock\0"[..]));
        let (bits, data) = delegator::key("/tmp/tmux-*").expect("a prefix");
        assert_eq!((bits, &data[..11]), (80, &b"/tmp/tmux-\0"[..]));
        assert_eq!(delegator::key(""), None);
        assert_eq!(delegator::key("*"), None);
        assert_eq!(delegator::key(&"x".repeat(108)), None);
        assert!(delegator::key(&"x".repeat(107)).is_some());
    }

    #[test]
    fn mount_types_name_guarded_file_systems() {
        let name = |s: &str| {
            let mut b = [0u8; 16];
            b[..s.len()].copy_from_slice(s.as_bytes());
            b
        };
        assert_eq!(syscall::fs_magic(&name("cgroup2")), magic::CGROUP2);
        assert_eq!(syscall::fs_magic(&name("securityfs")), magic::SECURITYFS);
        assert_eq!(syscall::fs_magic(&name("bpf")), magic::BPF_FS);
        assert_eq!(syscall::fs_magic(&name("bpff")), 0);
        assert_eq!(syscall::fs_magic(&name("tmpfs")), 0);
        assert_eq!(syscall::fs_magic(&name("")), 0);
    }

    #[test]
    fn event_numbers_name_the_attempt() {
        for t in Tamper::ALL {
            assert_eq!(Tamper::from_u32(*t as u32), Some(*t));
        }
        assert_eq!(Tamper::from_u32(0), None);
    }

    #[test]
    fn the_sockets_the_hooks_do_not_see() {
        use socket::*;
        assert!(unhooked(AF_PACKET, SOCK_DGRAM, 0));
        assert!(unhooked(AF_INET, SOCK_RAW, 6));
        assert!(unhooked(AF_INET6, SOCK_PACKET, 0));
        assert!(unhooked(AF_INET, SOCK_DGRAM, IPPROTO_ICMP));
        assert!(unhooked(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6));
        // TCP and UDP pass the connect and sendmsg hooks.
        assert!(!unhooked(AF_INET, 1, 0));
        assert!(!unhooked(AF_INET6, SOCK_DGRAM, 17));
        assert!(!unhooked(AF_INET6, SOCK_DGRAM, 0));
        // Unix sockets are not network sockets.
        assert!(!unhooked(1, SOCK_DGRAM, 0));
    }

    #[test]
    fn a_group_opts_in_to_one_kind_of_socket_at_a_time() {
        use crate::policy::group_flags::*;
        use socket::*;
        let raw = |f, t, p| Tamper::RawSocket.permitted_by(f, t, p, 0);
        assert_eq!(raw(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), PERMIT_PING);
        assert_eq!(raw(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6), PERMIT_PING);
        assert_eq!(raw(AF_INET, SOCK_RAW, IPPROTO_ICMP), PERMIT_RAW_SOCKETS);
        assert_eq!(raw(AF_PACKET, SOCK_RAW, 768), PERMIT_PACKET_SOCKETS);
        let cap = |c: i32| Tamper::Capability.permitted_by(0, 0, 0, c as u64);
        assert_eq!(
            cap(capability::NET_RAW),
            PERMIT_RAW_SOCKETS | PERMIT_PACKET_SOCKETS
        );
        assert_eq!(cap(capability::NET_ADMIN), 0);
        assert_eq!(
            Tamper::Delegator.permitted_by(0, 0, 0, 0),
            PERMIT_DELEGATORS
        );
        assert_eq!(Tamper::Bpf.permitted_by(0, 0, 0, 0), 0);
    }

    #[test]
    fn refused_capabilities_have_names() {
        for cap in 0..41 {
            assert_eq!(
                capability::refused(cap),
                capability::name(cap as u64).is_some()
            );
        }
    }
}
