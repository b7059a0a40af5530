//! No tampering with the enforcer's process: every `bpf()` command, and signals and
//! ptrace-class access to the daemon (its pid is in `PROTECTED`). Its files are `files.rs`.

use agent_common::tamper::Tamper;
use aya_ebpf::{macros::lsm, programs::LsmContext};

use super::{judge, Attempt, Target};
use crate::{kernel, maps::PROTECTED};

/// `PTRACE_MODE_NOAUDIT` (`linux/ptrace.h`): the kernel asks without meaning to report.
const PTRACE_MODE_NOAUDIT: u64 = 0x04;

/// `bpf(int cmd, union bpf_attr *attr, unsigned int size)`: nothing in a session needs bpf().
#[lsm(hook = "bpf")]
pub fn bpf(ctx: LsmContext) -> i32 {
    let cmd: i32 = ctx.arg(0);
    judge(Some(Attempt::new(
        Tamper::Bpf,
        Target {
            ino: cmd as u64,
            ..Target::default()
        },
    )))
}

/// `task_kill(struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *)`.
#[lsm(hook = "task_kill")]
pub fn task_kill(ctx: LsmContext) -> i32 {
    let sig: i32 = ctx.arg(2);
    if sig == 0 {
        // Only asks whether the process exists.
        return 0;
    }
    judge(to_daemon(ctx.arg(0), Tamper::Signal, sig as u64, false))
}

/// `ptrace_access_check(struct task_struct *child, unsigned int mode)`: ptrace, and the
/// accesses the kernel checks the same way (`process_vm_*`, `pidfd_getfd`, `/proc/PID/mem`).
#[lsm(hook = "ptrace_access_check")]
pub fn ptrace_access_check(ctx: LsmContext) -> i32 {
    let mode: u32 = ctx.arg(1);
    let mode = mode as u64;
    judge(to_daemon(
        ctx.arg(0),
        Tamper::Ptrace,
        mode,
        mode & PTRACE_MODE_NOAUDIT != 0,
    ))
}

#[inline(always)]
fn to_daemon(task: usize, what: Tamper, detail: u64, quiet: bool) -> Option<Attempt> {
    let tgid = match kernel::task_tgid(task) {
        Ok(t) => t,
        Err(_) => return Some(Attempt::unreadable(what)),
    };
    // SAFETY: plain value, only tested for presence.
    unsafe { PROTECTED.get(&tgid) }?;
    Some(Attempt::new(
        what,
        Target {
            ino: tgid as u64,
            dev: detail,
            quiet,
            ..Target::default()
        },
    ))
}
