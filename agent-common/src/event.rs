//! The one event record the kernel programs send to the daemon through the `EVENTS` ring buffer.

use crate::{ARGV_LEN, ARG_SLOT, COMM_LEN, PATH_LEN};

/// What happened. Stable numbers: they are stored in event logs.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An exec by a watched process was judged.
    Exec = 1,
    /// An outbound connect (TCP/UDP connect, or UDP sendmsg) by a watched process was judged.
    Connect = 2,
    /// The arguments of a new image differ from the ones the exec was judged on: killed.
    ArgvMismatch = 3,
    /// An attempt on the enforcement itself (`crate::tamper`).
    Tamper = 4,
}

crate::verdict::names!(EventKind {
    Exec => "exec",
    Connect => "connect",
    ArgvMismatch => "argv_mismatch",
    Tamper => "tamper",
});

impl EventKind {
    pub const fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Connect),
            3 => Some(Self::ArgvMismatch),
            4 => Some(Self::Tamper),
            _ => None,
        }
    }
}

/// Bits of [`Event::flags`].
pub mod flags {
    /// The operation was let through by a grant (`Event::grant_id` says which).
    pub const GRANT_USED: u32 = 1 << 0;
    /// The group is in monitor mode: a refusal was reported but not enforced.
    pub const MONITOR: u32 = 1 << 1;
    /// argv was longer than the capture buffer (or had more arguments than counted).
    pub const ARGV_TRUNCATED: u32 = 1 << 2;
    /// The exec was refused by killing the process (fallback mode).
    pub const KILLED: u32 = 1 << 3;
    /// The kernel program could not read something it needed and failed closed.
    pub const FAILED_CLOSED: u32 = 1 << 4;
    /// argv was not captured at syscall entry; the decision used the new image's arguments.
    pub const ARGV_FROM_IMAGE: u32 = 1 << 5;
    /// The exec ran a `#!` script or another interpreted format (an interpreter level).
    pub const INTERPRETED: u32 = 1 << 6;
    /// The refused operation was a UDP sendmsg rather than a connect.
    pub const SENDMSG: u32 = 1 << 7;
    /// Exec: the file was written by a watched process (or has no name: a memfd, `O_TMPFILE`).
    pub const AGENT_WRITTEN: u32 = 1 << 8;
    /// Exec: the file is a copy of a guarded binary, recognised by its content
    /// (`crate::identity`); `Event::detail` is that binary's id.
    pub const COPY: u32 = 1 << 9;
}

/// One judged operation.
///
/// Layout: 8-byte fields first, then 4-byte, then 2-byte, then byte arrays, so that there is
/// no implicit padding; the size is a multiple of 8 (asserted below).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the decision was made.
    pub ktime_ns: u64,
    /// cgroup v2 id (inode of the cgroup directory) of the process.
    pub cgroup_id: u64,
    /// cgroup id of the agent group the process belongs to.
    pub group_cgroup_id: u64,
    /// Fingerprint of the operation: keys grants and de-duplicates requests.
    pub fingerprint: u64,
    /// Grant that let the operation through, when `flags & GRANT_USED`.
    pub grant_id: u64,
    /// Kernel device number (`MKDEV(major, minor)` = `major << 20 | minor`) of the executed file.
    pub dev: u64,
    /// Inode number of the executed file.
    pub ino: u64,
    /// Exec: the file's write stamp (`crate::grant::Grant::stamp`); 0 when no watched process
    /// wrote it (as far as the marks remember).
    pub stamp: u64,
    /// [`EventKind`].
    pub kind: u32,
    /// The [`crate::Action`] that applied (rule or default).
    pub action: u32,
    /// [`flags`].
    pub flags: u32,
    /// [`crate::Mode`].
    pub mode: u32,
    /// Rule index + 1 in the compiled policy; 0 when the group's default applied.
    pub rule: u32,
    /// Agent group index in the compiled policy.
    pub group: u32,
    /// Policy generation the decision was made with.
    pub generation: u32,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Parent process id (0 when unknown, e.g. for connects).
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Number of arguments (argv[0] included).
    pub argc: u32,
    /// Bytes used in `argv` (argv[1..]).
    pub argv_len: u32,
    /// Bytes used in `path` (without the NUL).
    pub path_len: u32,
    /// Tamper events: what was tried ([`crate::tamper::Tamper`]). Exec events with
    /// [`flags::COPY`]: the id of the guarded binary the file is a copy of. Otherwise 0.
    pub detail: u32,
    /// Destination port (host byte order) for connects.
    pub port: u16,
    /// `AF_INET` or `AF_INET6` as the caller used it (the address is always stored as IPv6,
    /// IPv4 as `::ffff:a.b.c.d`).
    pub family: u16,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub protocol: u16,
    /// Alignment only.
    pub _pad0: u16,
    /// Destination address (IPv6 or IPv4-mapped IPv6), network byte order.
    pub addr: [u8; 16],
    pub comm: [u8; COMM_LEN],
    /// Path of the executed file as the caller named it (or the script for interpreters).
    pub path: [u8; PATH_LEN],
    /// argv[0], NUL-terminated (at most 63 bytes).
    pub argv0: [u8; ARG_SLOT],
    /// argv[1..], NUL-separated.
    pub argv: [u8; ARGV_LEN],
}

const _: () = assert!(core::mem::size_of::<Event>().is_multiple_of(8));
const _: () = assert!(
    core::mem::size_of::<Event>()
        == 8 * 8 + 16 * 4 + 4 * 2 + 16 + COMM_LEN + PATH_LEN + ARG_SLOT + ARGV_LEN
);
