//! Types shared by the Countersign kernel programs (`agent-ebpf`) and the daemon (`agent`).
//!
//! Everything here crosses the kernel/user boundary through BPF maps or the event ring buffer,
//! so every type is `#[repr(C)]`, `Copy` and free of implicit padding: fields that exist only
//! for alignment are named `_pad*` and say so. Numbers of enums are part of the on-disk event
//! format and of pinned maps: never renumber them.
#![no_std]

#[cfg(feature = "binding")]
extern crate std;

#[cfg(feature = "binding")]
pub mod binding;
pub mod event;
pub mod grant;
pub mod hash;
pub mod identity;
pub mod matching;
pub mod offsets;
pub mod policy;
pub mod session;
pub mod tamper;
pub mod verdict;

pub use verdict::{Action, Mode, Outcome};

/// Bytes of argv[1..] captured per exec (NUL-separated arguments). Longer command lines are
/// truncated and flagged with [`event::flags::ARGV_TRUNCATED`].
pub const ARGV_LEN: usize = 512;
/// Arguments whose individual hashes are kept (argv[0] included).
pub const MAX_ARGS: usize = 16;
/// Bytes of one argument's slot as rules see it (NUL included).
pub const ARG_SLOT: usize = 64;
/// Longest argument compared whole: [`MAX_WHOLE_ARG`] bytes and its NUL fill a slot with a
/// byte to spare. The kernel reads an argument with `bpf_probe_read_user_str` into the slot,
/// which returns the same count for an argument of `ARG_SLOT - 1` bytes and for a longer one
/// cut to fit, so only arguments shorter than that are known whole. A longer argument cannot
/// match a literal and is handled conservatively.
pub const MAX_WHOLE_ARG: usize = ARG_SLOT - 2;
/// Bytes of a path captured for display.
pub const PATH_LEN: usize = 256;
/// Length of a task's comm.
pub const COMM_LEN: usize = 16;
/// Deepest cgroup v2 level an agent group may sit at.
pub const MAX_CGROUP_LEVEL: u32 = 31;
/// Deepest a process's cgroup may sit below its agent group's. The exec programs find the
/// group by walking up from the process's cgroup, `MAX_CGROUP_LEVEL + 1` levels at most (a
/// bounded loop); the daemon sets each group cgroup's `cgroup.max.depth` to this, so the
/// kernel refuses to create a cgroup the walk could not see out of.
pub const MAX_SESSION_DEPTH: u32 = MAX_CGROUP_LEVEL;

/// Names of the maps and programs, used by the loader and for pinning.
pub mod names {
    pub const EVENTS: &str = "EVENTS";
    pub const STATE: &str = "STATE";
    pub const WATCHED: &str = "WATCHED";
    pub const ACCOUNTS: &str = "ACCOUNTS";
    pub const BINARIES: &str = "BINARIES";
    pub const EXEC_RULES: &str = "EXEC_RULES";
    pub const NET_RULES: &str = "NET_RULES";
    pub const GRANTS: &str = "GRANTS";
    pub const TICKETS: &str = "TICKETS";
    pub const SESSION_STATS: &str = "SESSION_STATS";
    pub const PENDING_EXEC: &str = "PENDING_EXEC";
    pub const STATS: &str = "STATS";
    pub const OFFSETS: &str = "OFFSETS";
    pub const PROTECTED: &str = "PROTECTED";
    pub const GUARDED_FILES: &str = "GUARDED_FILES";
    pub const DELEGATORS: &str = "DELEGATORS";
    pub const SYSCALL_GUARDS: &str = "SYSCALL_GUARDS";
    pub const CONTENTS: &str = "CONTENTS";
    pub const WRITTEN: &str = "WRITTEN";
    pub const MARKS: &str = "MARKS";
    pub const MARKS_LOST: &str = "MARKS_LOST";
    pub const IDENTIFY: &str = "IDENTIFY";
    pub const LOADERS: &str = "LOADERS";

    pub const PROG_BPRM_CHECK: &str = "bprm_check_security";
    pub const PROG_ENTER_EXECVE: &str = "sys_enter_execve";
    pub const PROG_ENTER_EXECVEAT: &str = "sys_enter_execveat";
    pub const PROG_PROCESS_EXEC: &str = "sched_process_exec";
    /// Second half of `sched_process_exec`, reached by tail call through `EXEC_TAIL`.
    pub const PROG_EXEC_JUDGE: &str = "exec_judge";
    pub const EXEC_TAIL: &str = "EXEC_TAIL";
    pub const PROG_CONNECT4: &str = "connect4";
    pub const PROG_CONNECT6: &str = "connect6";
    pub const PROG_SENDMSG4: &str = "sendmsg4";
    pub const PROG_SENDMSG6: &str = "sendmsg6";
    /// Fallback mode only: refuses raw and ICMP inet sockets (LSM mode has `socket_create`).
    pub const PROG_SOCK_CREATE: &str = "sock_create";
    /// Fallback mode only: kills a watched process entering a system call LSM mode refuses
    /// (`agent_common::tamper::syscall`); attached to each of those syscall tracepoints.
    pub const PROG_TAMPER_SYSCALL: &str = "tamper_syscall";
    /// Fallback mode only: marks the files a watched process opened for writing (LSM mode
    /// marks them in `file_open`); attached to the exit tracepoints of the open syscalls.
    pub const PROG_MARK_WRITTEN: &str = "mark_written";

    /// LSM mode's guards (`agent-ebpf/src/guard`), each program named after its LSM hook.
    pub const GUARDS: &[&str] = &[
        "file_open",
        "task_alloc",
        "sb_kern_mount",
        "move_mount",
        "sb_umount",
        "bpf",
        "task_kill",
        "ptrace_access_check",
        "inode_unlink",
        "inode_rmdir",
        "inode_rename",
        "inode_create",
        "inode_mkdir",
        "inode_link",
        "inode_symlink",
        "inode_mknod",
        "path_truncate",
        "kernel_read_file",
        "kernel_load_data",
        "socket_create",
        "capable",
        "unix_stream_connect",
        "mmap_file",
        "file_mprotect",
    ];
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all these types are #[repr(C)], Copy, made only of integers and arrays of
    // integers, and have no implicit padding (checked by the size asserts in their modules).
    unsafe impl aya::Pod for event::Event {}
    unsafe impl aya::Pod for grant::GrantKey {}
    unsafe impl aya::Pod for grant::Grant {}
    unsafe impl aya::Pod for session::SessionStats {}
    unsafe impl aya::Pod for offsets::Offsets {}
    unsafe impl aya::Pod for tamper::GuardedFile {}
    unsafe impl aya::Pod for policy::State {}
    unsafe impl aya::Pod for policy::WatchKey {}
    unsafe impl aya::Pod for policy::AccountKey {}
    unsafe impl aya::Pod for policy::Group {}
    unsafe impl aya::Pod for policy::BinaryKey {}
    unsafe impl aya::Pod for policy::ExecRulesKey {}
    unsafe impl aya::Pod for policy::ExecRules {}
    unsafe impl aya::Pod for policy::NetKey {}
    unsafe impl aya::Pod for policy::ExecSlot {}
    unsafe impl aya::Pod for policy::NetSlot {}
    unsafe impl aya::Pod for policy::NetRules {}
    unsafe impl aya::Pod for identity::ContentKey {}
    unsafe impl aya::Pod for identity::FileKey {}
    unsafe impl aya::Pod for identity::Identify {}
}
