//! Fallback mode's guards (`agent_common::tamper::syscall`): without BPF LSM nothing can
//! refuse these system calls, so a watched process entering one is killed (`SIGKILL`, sent
//! before the call runs) and the attempt reported as LSM mode reports it, with the outcome
//! `killed`. The call itself still runs: what it does outside the process stays done (a
//! signal reaches the daemon, a module loads), but nothing it returns reaches the process —
//! the descriptor a `bpf()` or `pidfd_open` call hands out dies with it, and `clone3` makes no
//! child while a fatal signal is pending. One program, attached to each guarded tracepoint; the
//! syscall number in the record says which call it is.

use agent_common::{
    event::flags,
    tamper::{capability, magic, syscall as sc, Tamper},
};
use aya_ebpf::{
    helpers::{bpf_get_current_uid_gid, bpf_probe_read_user, generated::bpf_probe_read_user_str},
    macros::tracepoint,
    programs::TracePointContext,
};

use super::{loader, refused, Attempt, Target};
use crate::{
    exec, kernel,
    maps::{PROTECTED, SYSCALL_GUARDS},
    watch::Watched,
    SYS_ENTER_ARG0, SYS_ENTER_NR,
};

/// `kernel_read_file_id`/`kernel_load_data_id` values, as `Tamper::KernelLoad` reports them.
const LOAD_MODULE: u64 = 2;
const LOAD_KEXEC: u64 = 3;
const FROM_FILE: u64 = 0;
const FROM_MEMORY: u64 = 1;
const AF_PACKET: u64 = agent_common::tamper::socket::AF_PACKET as u64;
/// `PROT_EXEC`, `MAP_ANONYMOUS` (uapi `asm-generic/mman-common.h`).
const PROT_EXEC: u64 = 0x4;
const MAP_ANONYMOUS: u64 = 0x20;

#[tracepoint]
pub fn tamper_syscall(ctx: TracePointContext) -> u32 {
    // SAFETY: the syscall number, after the record's first word (for BPF programs the kernel
    // puts a `pt_regs` pointer there).
    let Ok(nr) = (unsafe { ctx.read_at::<u64>(SYS_ENTER_NR) }) else {
        return 0;
    };
    // SAFETY: plain value.
    let Some(&guard) = (unsafe { SYSCALL_GUARDS.get(&(nr as u32)) }) else {
        return 0;
    };
    let arg = |i: usize| {
        // SAFETY: `args[i]` of `struct trace_event_raw_sys_enter`.
        unsafe { ctx.read_at::<u64>(SYS_ENTER_ARG0 + 8 * i) }.unwrap_or(0)
    };
    if guard == sc::MMAP {
        mapping(arg);
        return 0;
    }
    let Some(attempt) = attempt(guard, arg) else {
        return 0;
    };
    // An error finding the caller's group kills nobody: unlike an LSM refusal, a kill of a
    // host process the read failed on could not be taken back.
    if let Ok(Some(w)) = exec::watched() {
        kill_if_refused(attempt, &w);
    }
    0
}

/// Reports `attempt` of the watched caller and kills it, unless its group only monitors.
#[inline(always)]
fn kill_if_refused(attempt: Attempt, w: &Watched) {
    if refused(attempt, w, flags::KILLED) {
        exec::kill();
    }
}

/// `mmap(addr, len, prot, flags, fd, off)` of a file, executable, by a watched process: the
/// loader guard's judgement (`loader::mapped`), and a kill instead of `EPERM`. Every process's
/// libraries come this way, so the caller's group is found first. Not seen: `mprotect` adding
/// `PROT_EXEC` to a mapping made readable (no file in its arguments).
#[inline(always)]
fn mapping(arg: impl Fn(usize) -> u64) {
    if arg(2) & PROT_EXEC == 0 || arg(3) & MAP_ANONYMOUS != 0 {
        return;
    }
    let fd = arg(4) as u32 as i32;
    if fd < 0 {
        return;
    }
    let Ok(Some(w)) = exec::watched() else {
        return;
    };
    let attempt = match kernel::fd_file(kernel::current_task(), fd as u64) {
        Ok(file) => loader::mapped(file),
        Err(_) => Some(Attempt::unreadable(Tamper::Loader)),
    };
    if let Some(a) = attempt {
        kill_if_refused(a, &w);
    }
}

/// What entering the guarded call `guard` with arguments `arg(i)` attempts; None when it
/// aims at nothing guarded.
#[inline(always)]
fn attempt(guard: u32, arg: impl Fn(usize) -> u64) -> Option<Attempt> {
    let (what, target) = match guard {
        sc::BPF => (Tamper::Bpf, value(arg(0) as u32 as u64, 0)),
        sc::KILL => {
            let (pid, sig) = (arg(0) as u32 as i32, arg(1) as u32);
            if sig == 0 {
                return None;
            }
            let target = if pid == -1 {
                sc::EVERY_PROCESS
            } else {
                // A process group's id is its leader's pid.
                daemon(pid.unsigned_abs())?
            };
            (Tamper::Signal, value(target, sig as u64))
        }
        sc::TKILL | sc::TGKILL => {
            let sig = arg(if guard == sc::TKILL { 1 } else { 2 }) as u32;
            if sig == 0 {
                return None;
            }
            (Tamper::Signal, value(daemon(arg(0) as u32)?, sig as u64))
        }
        sc::PTRACE => (
            Tamper::Ptrace,
            value(daemon(arg(1) as u32)?, sc::PTRACE_ATTACH_MODE),
        ),
        sc::PROCESS_VM => (
            Tamper::Ptrace,
            value(daemon(arg(0) as u32)?, sc::PTRACE_ATTACH_MODE),
        ),
        // Signal 0 in the event: the handle, not a signal yet.
        sc::PIDFD_OPEN => (Tamper::Signal, value(daemon(arg(0) as u32)?, 0)),
        sc::INIT_MODULE => (Tamper::KernelLoad, value(LOAD_MODULE, FROM_MEMORY)),
        sc::FINIT_MODULE => (Tamper::KernelLoad, value(LOAD_MODULE, FROM_FILE)),
        sc::KEXEC_LOAD => (Tamper::KernelLoad, value(LOAD_KEXEC, FROM_MEMORY)),
        sc::KEXEC_FILE_LOAD => (Tamper::KernelLoad, value(LOAD_KEXEC, FROM_FILE)),
        sc::DELETE_MODULE => (Tamper::Capability, value(capability::SYS_MODULE as u64, 0)),
        sc::REBOOT => (Tamper::Capability, value(capability::SYS_BOOT as u64, 0)),
        sc::MOUNT | sc::FSOPEN => {
            let ty = arg(if guard == sc::MOUNT { 2 } else { 0 });
            let m = guarded_type(ty)?;
            (Tamper::Mount, value(m, 0))
        }
        sc::UMOUNT => {
            // Unmounting needs CAP_SYS_ADMIN over the mount; a caller whose uid is not root
            // outside any user namespace unmounts only in a namespace of its own.
            if bpf_get_current_uid_gid() as u32 != 0 {
                return None;
            }
            (Tamper::Unmount, value(0, 0))
        }
        sc::SOCKET => {
            if arg(0) as u32 as u64 != AF_PACKET {
                return None;
            }
            let target = Target {
                family: AF_PACKET as u16,
                dev: arg(1) & 0xf,
                protocol: arg(2) as u16,
                ..Target::default()
            };
            (Tamper::RawSocket, target)
        }
        sc::CLONE3 => {
            let p = arg(0) as *const u64;
            // SAFETY: `clone_args.flags`, the first field, read from the caller's memory.
            let flags = unsafe { bpf_probe_read_user(p) }.unwrap_or(0);
            if flags & sc::CLONE_INTO_CGROUP == 0 {
                return None;
            }
            (Tamper::CloneIntoCgroup, value(0, flags))
        }
        sc::IO_URING_SETUP => (Tamper::IoUring, value(arg(0) as u32 as u64, 0)),
        _ => return None,
    };
    Some(Attempt::new(what, target))
}

fn value(ino: u64, dev: u64) -> Target {
    Target {
        ino,
        dev,
        ..Target::default()
    }
}

/// `pid` as a target when it is the daemon's.
#[inline(always)]
fn daemon(pid: u32) -> Option<u64> {
    // SAFETY: plain value, only tested for presence.
    unsafe { PROTECTED.get(&pid) }?;
    Some(pid as u64)
}

/// The magic of the guarded file system the caller's type string `ptr` names, if it does.
#[inline(always)]
fn guarded_type(ptr: u64) -> Option<u64> {
    if ptr == 0 {
        return None;
    }
    let mut name = [0u8; 16];
    // SAFETY: bounded read of a string from the caller's memory into a local buffer; a
    // longer name is cut and matches nothing.
    let n = unsafe { bpf_probe_read_user_str(name.as_mut_ptr() as *mut _, 16, ptr as *const _) };
    if n <= 0 {
        return None;
    }
    let m = sc::fs_magic(&name);
    magic::guarded(m).then_some(m)
}
