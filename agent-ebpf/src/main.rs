//! Countersign kernel programs.
//!
//! Minimum kernel: 5.10 with BTF (`CONFIG_DEBUG_INFO_BTF=y`), cgroup v2, `CONFIG_BPF_SYSCALL`,
//! `CONFIG_CGROUP_BPF`; the LSM mode also needs `CONFIG_BPF_LSM=y` and `bpf` in the active
//! LSMs (`lsm=…,bpf`). Structure offsets come from the daemon (see `kernel.rs`).
#![no_std]
#![no_main]

mod argv;
mod connect;
mod emit;
mod enforce;
mod evidence;
mod exec;
mod grants;
mod guard;
mod identity;
mod kernel;
mod maps;
mod rules;
mod sock_create;
mod watch;

use agent_common::Mode;
use aya_ebpf::{
    macros::{cgroup_sock_addr, lsm, raw_tracepoint, tracepoint},
    programs::{LsmContext, RawTracePointContext, SockAddrContext, TracePointContext},
};
use aya_log_ebpf::warn;
use connect::Hook;

/// Why a program could not finish judging (its number appears in the daemon's log).
#[repr(u32)]
#[derive(Clone, Copy, Debug)]
pub enum Error {
    NullPointer,
    KernelRead,
    UserRead,
    Map,
    TailCall,
}

// Offsets of the syscall tracepoints' arguments (`struct trace_event_raw_sys_enter`: 8 bytes
// of common fields, the syscall number, then `args[6]`): a stable tracing ABI.
const SYS_ENTER_ARG0: usize = 16;
const SYS_ENTER_NR: usize = 8;
/// `ret` of `struct trace_event_raw_sys_exit` (common fields, the syscall number, `ret`).
const SYS_EXIT_RET: usize = 16;

/// `syscalls/sys_enter_execve`: capture argv. An error here is not a decision: the exec is
/// judged later from the new image's arguments (flagged `ARGV_FROM_IMAGE`).
#[tracepoint]
pub fn sys_enter_execve(ctx: TracePointContext) -> u32 {
    // SAFETY: offset of `argv` in the tracepoint's format.
    let argv = unsafe { ctx.read_at::<u64>(SYS_ENTER_ARG0 + 8) }.unwrap_or(0);
    let _ = exec::enter(argv as *const *const u8);
    0
}

/// `syscalls/sys_enter_execveat(dfd, filename, argv, envp, flags)`.
#[tracepoint]
pub fn sys_enter_execveat(ctx: TracePointContext) -> u32 {
    // SAFETY: offset of `argv` in the tracepoint's format.
    let argv = unsafe { ctx.read_at::<u64>(SYS_ENTER_ARG0 + 16) }.unwrap_or(0);
    let _ = exec::enter(argv as *const *const u8);
    0
}

/// LSM mode: `bprm_check_security(struct linux_binprm *bprm)`; runs once per binfmt level.
/// A refusal earlier in the LSM stack is passed on unchanged. Fail-closed: an error while
/// judging a watched process refuses (see `exec::check`).
#[lsm(hook = "bprm_check_security")]
pub fn bprm_check_security(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    match exec::check(ctx.arg::<usize>(0)) {
        Ok(verdict) => verdict,
        Err(e) => {
            warn!(
                &ctx,
                "exec refused: could not judge a watched exec (error {})", e as u32
            );
            -1
        }
    }
}

/// Both modes: `sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *)`
/// fires after the exec committed and before the new image runs; refusals here are SIGKILL.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    let old_pid: u64 = ctx.arg(1);
    let bprm: usize = ctx.arg(2);
    let mode = match exec_mode() {
        Some(m) => m,
        None => return 0,
    };
    if let Err(e) = exec::committed(&ctx, old_pid as u32, bprm, mode) {
        warn!(
            &ctx,
            "exec killed: could not judge a watched exec (error {})", e as u32
        );
    }
    0
}

/// Second half of `sched_process_exec`, reached by tail call only (never attached).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn exec_judge(_ctx: RawTracePointContext) -> i32 {
    let _ = exec::judge_committed();
    0
}

fn exec_mode() -> Option<Mode> {
    // SAFETY: one-entry array.
    let state = maps::STATE.get(agent_common::policy::STATE_INDEX)?;
    Mode::from_u32(state.mode)
}

// Connect programs: an error judging a watched process refuses (returns 0), never allows.
#[cgroup_sock_addr(connect4)]
pub fn connect4(ctx: SockAddrContext) -> i32 {
    connect::judge(&ctx, Hook::Connect4).unwrap_or(0)
}

#[cgroup_sock_addr(connect6)]
pub fn connect6(ctx: SockAddrContext) -> i32 {
    connect::judge(&ctx, Hook::Connect6).unwrap_or(0)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn sendmsg4(ctx: SockAddrContext) -> i32 {
    connect::judge(&ctx, Hook::Sendmsg4).unwrap_or(0)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn sendmsg6(ctx: SockAddrContext) -> i32 {
    connect::judge(&ctx, Hook::Sendmsg6).unwrap_or(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
