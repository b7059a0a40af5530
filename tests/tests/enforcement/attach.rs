//! Attaching and detaching the kernel programs while the machine is busy with system calls.
//!
//! The first program on a syscall tracepoint makes the kernel patch its own text (the
//! tracepoint's static key and static call) and flag every thread for traced syscall entry,
//! while other CPUs run that very code. Under qemu's multi-threaded TCG this once hung test
//! VMs (docs/testing.md, "A VM that hangs"). These tests repeat the transition many times
//! under load, so that a regression shows as a hang the VM runner reports with stacks.
//! `cargo xtask stress-attach` runs them with many more cycles on every test kernel.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::Instant,
};

use tests::env::{optional, ATTACH_CYCLES, TOGGLE_CYCLES};

use crate::{exec_rule, testbed};

/// Threads of this process that make system calls without pause until `stop` — two that
/// alternate `statx`, `getppid` and `sched_yield` (the yield leaves the CPU to the daemon, so
/// its start-up is not starved under emulation), one that forks and executes `exec_target` —
/// while `f` runs. Returns `f`'s result and how many calls and execs they made.
fn with_syscall_load<T>(exec_target: &str, f: impl FnOnce() -> T) -> (T, u64) {
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let result = thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let _ = fs::metadata("/");
                    // SAFETY: getppid and sched_yield have no preconditions.
                    unsafe {
                        libc::getppid();
                        libc::sched_yield();
                    }
                    calls.fetch_add(3, Ordering::Relaxed);
                }
            });
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = Command::new(exec_target)
                    .arg("load")
                    .stdout(Stdio::null())
                    .status();
                calls.fetch_add(1, Ordering::Relaxed);
            }
        });
        let result = f();
        stop.store(true, Ordering::Relaxed);
        result
    });
    (result, calls.into_inner())
}

#[test]
fn daemon_start_and_unload_under_syscall_load() {
    let mut t = testbed("attach-load");
    let cycles: usize = optional(ATTACH_CYCLES).unwrap_or(4);
    let (guarded, other) = (t.bin("guarded"), t.bin("other"));
    let policy = t.policy(&exec_rule("no-guarded", &guarded, "deny"));
    t.write_policy(&policy);
    let started = Instant::now();
    let ((), calls) = with_syscall_load(&other, || {
        for cycle in 1..=cycles {
            t.agent_mut().start();
            // Enforcing, not merely attached: the rule refuses.
            let out = t.exec(&[&guarded, "cycle"]);
            t.assert_exec_refused(&out);
            let status = t.agent_mut().stop();
            assert!(
                status.success(),
                "cycle {cycle}: the daemon exited {status}"
            );
            let out = t.agent().unload();
            out.assert_success();
            eprintln!("cycle {cycle}/{cycles}: attached, refused, detached");
        }
    });
    eprintln!(
        "{cycles} attach/detach cycles in {:.1}s under load ({calls} system calls and execs)",
        started.elapsed().as_secs_f64()
    );
    // Unloaded for good: the rule is gone with the programs.
    t.exec(&[&guarded, "after"]).assert_ran();
}

/// The tracepoint id of the `sys_enter_execve` trace event, when the kernel has syscall
/// trace events.
fn sys_enter_execve_id() -> Option<u64> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(|root| PathBuf::from(root).join("events/syscalls/sys_enter_execve/id"))
        .find_map(|p| fs::read_to_string(p).ok()?.trim().parse().ok())
}

/// Opens a perf event on tracepoint `id` on CPU 0 for every process, as the daemon's
/// tracepoint attachment does (aya: `perf_event_open(PERF_TYPE_TRACEPOINT)`). The first such
/// event registers the kernel's probe on the tracepoint; closing the last unregisters it.
fn open_tracepoint_event(id: u64) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    // struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes): type, size, config; the rest
    // (sample period, flags) zero: a counting event, enabled at once.
    let mut attr = [0u64; 8];
    attr[0] = u64::from(PERF_TYPE_TRACEPOINT) | (64u64 << 32);
    attr[1] = id;
    // SAFETY: attr is a valid perf_event_attr of the size it states; no other pointers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The same kernel transition as the daemon's attachment (first and last user of the
/// `sys_enter` tracepoint: the kernel patches the tracepoint's static key and static call and
/// flags every thread for traced syscall entry), without BPF and thousands of times faster:
/// a perf event on `sys_enter_execve` opened and closed again, as the daemon attaches its
/// programs. (Not the tracefs `enable` file: that also starts the scheduler's comm recording,
/// whose text patching in code that runs with interrupts off the daemon never causes.)
#[test]
fn syscall_tracepoint_toggles_under_syscall_load() {
    let Some(id) = sys_enter_execve_id() else {
        eprintln!("SKIP: no syscall trace events in tracefs (CONFIG_FTRACE_SYSCALLS off?)");
        return;
    };
    let t = testbed("attach-toggle");
    let cycles: usize = optional(TOGGLE_CYCLES).unwrap_or(300);
    let other = t.bin("other");
    let started = Instant::now();
    let ((), calls) = with_syscall_load(&other, || {
        for cycle in 1..=cycles {
            let event = open_tracepoint_event(id).unwrap_or_else(|e| {
                panic!("cycle {cycle}: perf_event_open on tracepoint {id} (sys_enter_execve): {e}")
            });
            drop(event);
            if cycle % 500 == 0 {
                eprintln!("toggle {cycle}/{cycles}");
            }
        }
    });
    eprintln!(
        "{cycles} open/close cycles of a perf event on sys_enter_execve in {:.1}s under load \
         ({calls} system calls and execs)",
        started.elapsed().as_secs_f64()
    );
}
