//! No tampering with the enforcer: every `bpf()` command, signals and ptrace-class access to
//! the daemon (its pid is in `PROTECTED`), and unlinking or renaming anything on a bpf file
//! system (the pins, which keep the programs attached while no daemon runs).

use agent_common::tamper::{magic, Tamper};
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Target};
use crate::{kernel, maps::PROTECTED};

/// `PTRACE_MODE_NOAUDIT` (`linux/ptrace.h`): the kernel asks without meaning to report.
const PTRACE_MODE_NOAUDIT: u64 = 0x04;

/// `bpf(int cmd, union bpf_attr *attr, unsigned int size)`: nothing in a session needs bpf().
#[lsm(hook = "bpf")]
pub fn bpf(ctx: LsmContext) -> i32 {
    let cmd: i32 = ctx.arg(0);
    judge(
        Tamper::Bpf,
        Target {
            ino: cmd as u64,
            ..Target::default()
        },
    )
}

/// `task_kill(struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *)`.
#[lsm(hook = "task_kill")]
pub fn task_kill(ctx: LsmContext) -> i32 {
    let sig: i32 = ctx.arg(2);
    if sig == 0 {
        // Only asks whether the process exists.
        return 0;
    }
    to_daemon(ctx.arg(0), Tamper::Signal, sig as u64, false)
}

/// `ptrace_access_check(struct task_struct *child, unsigned int mode)`: ptrace, and the
/// accesses the kernel checks the same way (`process_vm_*`, `pidfd_getfd`, `/proc/PID/mem`).
#[lsm(hook = "ptrace_access_check")]
pub fn ptrace_access_check(ctx: LsmContext) -> i32 {
    let mode: u32 = ctx.arg(1);
    let mode = mode as u64;
    to_daemon(
        ctx.arg(0),
        Tamper::Ptrace,
        mode,
        mode & PTRACE_MODE_NOAUDIT != 0,
    )
}

#[inline(always)]
fn to_daemon(task: usize, what: Tamper, detail: u64, quiet: bool) -> i32 {
    let tgid = match kernel::task_tgid(task) {
        Ok(t) => t,
        Err(_) => return judge(what, Target::default()),
    };
    // SAFETY: plain value, only tested for presence.
    if unsafe { PROTECTED.get(&tgid) }.is_none() {
        return 0;
    }
    judge(
        what,
        Target {
            ino: tgid as u64,
            dev: detail,
            quiet,
            ..Target::default()
        },
    )
}

/// `inode_unlink(struct inode *dir, struct dentry *dentry)`.
#[lsm(hook = "inode_unlink")]
pub fn inode_unlink(ctx: LsmContext) -> i32 {
    on_bpffs(ctx.arg(0), ctx.arg(1))
}

/// `inode_rmdir(struct inode *dir, struct dentry *dentry)`.
#[lsm(hook = "inode_rmdir")]
pub fn inode_rmdir(ctx: LsmContext) -> i32 {
    on_bpffs(ctx.arg(0), ctx.arg(1))
}

/// `inode_rename(struct inode *old_dir, struct dentry *old_dentry, …)`.
#[lsm(hook = "inode_rename")]
pub fn inode_rename(ctx: LsmContext) -> i32 {
    on_bpffs(ctx.arg(0), ctx.arg(1))
}

#[inline(always)]
fn on_bpffs(dir: usize, dentry: usize) -> i32 {
    match kernel::inode_magic(dir) {
        Ok(magic::BPF_FS) => {}
        Ok(_) => return 0,
        Err(_) => return judge(Tamper::PinRemoval, Target::default()),
    }
    judge(
        Tamper::PinRemoval,
        Target {
            ino: kernel::dentry_ino(dentry).unwrap_or(0),
            name: kernel::dentry_name(dentry).unwrap_or(0),
            ..Target::default()
        },
    )
}
