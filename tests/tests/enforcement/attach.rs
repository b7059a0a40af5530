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

/// tracefs's directory of syscall trace events, when the kernel has them.
fn syscall_events() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(|root| PathBuf::from(root).join("events/syscalls/sys_enter_execve/enable"))
        .find(|p| p.exists())
}

/// The same kernel transition as the daemon's attachment (first and last user of the
/// `sys_enter` tracepoint), without BPF and thousands of times faster: enabling and disabling
/// the `sys_enter_execve` trace event through tracefs.
#[test]
fn syscall_tracepoint_toggles_under_syscall_load() {
    let Some(enable) = syscall_events() else {
        eprintln!("SKIP: no syscall trace events in tracefs (CONFIG_FTRACE_SYSCALLS off?)");
        return;
    };
    let t = testbed("attach-toggle");
    let cycles: usize = optional(TOGGLE_CYCLES).unwrap_or(300);
    let other = t.bin("other");
    let started = Instant::now();
    let ((), calls) = with_syscall_load(&other, || {
        for cycle in 1..=cycles {
            for value in ["1", "0"] {
                fs::write(&enable, value).unwrap_or_else(|e| {
                    panic!(
                        "cycle {cycle}: writing {value} to {}: {e}",
                        enable.display()
                    )
                });
            }
            if cycle % 500 == 0 {
                eprintln!("toggle {cycle}/{cycles}");
            }
        }
    });
    eprintln!(
        "{cycles} enable/disable cycles of {} in {:.1}s under load ({calls} system calls and execs)",
        enable.display(),
        started.elapsed().as_secs_f64()
    );
}
