//! Exec enforcement.
//!
//! - `sys_enter_execve(at)` (both modes): capture argv from user memory for watched processes.
//! - `bprm_check_security` (LSM mode): judge the file about to run; refuse with EPERM.
//! - `sched_process_exec` (both modes): after the exec committed and before the new image runs
//!   an instruction: compare the image's arguments with the judged ones (kill on mismatch: the
//!   argv-rewrite race); judge here in fallback mode, and in LSM mode when the decision needed
//!   arguments the LSM hook could not know; refuse by SIGKILL.

use agent_common::{
    event::{flags, EventKind},
    policy::stats,
};
use aya_ebpf::helpers::{bpf_get_current_pid_tgid, generated::bpf_send_signal};

use crate::{
    argv::{self, Argv},
    emit,
    enforce::Outcome,
    identity,
    kernel::{self, Bprm},
    maps::count,
    rules::{self, ExecFacts, Verdict},
    watch::{self, Watched},
    Error,
};

mod committed;
mod lsm;

pub use committed::{committed, judge_committed};
pub use lsm::check;

const SIGKILL: u32 = 9;
const EPERM: i32 = 1;

/// Syscall entry: remember argv for the later stages.
#[inline(always)]
pub fn enter(argv_ptr: *const *const u8) -> Result<(), Error> {
    let Ok(Some(_)) = watched() else {
        return Ok(());
    };
    let a = argv::scratch()?;
    argv::capture(a, argv_ptr)?;
    argv::remember(bpf_get_current_pid_tgid() as u32, a)
}

/// The agent group of the current process (exec programs walk the cgroup hierarchy). Err:
/// the walk could not read the hierarchy, so the process may be watched; callers refuse it
/// (a read error never makes a watched process unwatched).
#[inline(always)]
pub(crate) fn watched() -> Result<Option<Watched>, Error> {
    watch::by_walk().inspect_err(|_| {
        count(stats::WATCH_ERRORS);
        count(stats::FAILED_CLOSED);
    })
}

pub(crate) fn kill() {
    // SAFETY: signals the current task, which is the process that just exec'd.
    unsafe { bpf_send_signal(SIGKILL) };
}

/// An internal error while judging a watched exec: refuse (unless the group only monitors),
/// so that an error can never let through what a rule refuses. Returns the LSM verdict.
pub(crate) fn fail_closed(w: &Watched, _e: Error) -> i32 {
    count(stats::FAILED_CLOSED);
    if w.group.flags & agent_common::policy::group_flags::MONITOR != 0 {
        0
    } else {
        -EPERM
    }
}

/// The rule inputs of an exec, and the parent's pid for the event.
#[inline(always)]
pub(crate) fn facts<'a>(
    w: &Watched,
    b: &Bprm,
    argv: Option<&'a Argv>,
) -> Result<(ExecFacts<'a>, u32), Error> {
    let (ppid, parent) = kernel::parent_of(kernel::current_task())?;
    let parent = parent.map_or(rules::NO_BINARY, |p| {
        rules::binary_id(w.generation, p.dev, p.ino)
    });
    let id = identity::of_exec(w.generation, b)?;
    Ok((
        ExecFacts {
            generation: w.generation,
            group: w.group.id,
            binary: id.binary,
            parent,
            argv,
            identity: id.flags,
            stamp: id.stamp,
        },
        ppid,
    ))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn report(
    w: &Watched,
    v: &Verdict,
    o: &Outcome,
    b: &Bprm,
    fp: u64,
    ppid: u32,
    f: &ExecFacts,
    extra: u32,
) {
    let Some(mut entry) = emit::start(EventKind::Exec, w, v, o) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: reserved record.
    unsafe {
        (*e).fingerprint = fp;
        (*e).dev = b.file.dev;
        (*e).ino = b.file.ino;
        (*e).stamp = f.stamp;
        (*e).ppid = ppid;
        (*e).flags |= extra | f.identity;
        if f.identity & flags::COPY != 0 {
            (*e).detail = f.binary;
        }
        if b.interpreted {
            (*e).flags |= flags::INTERPRETED;
        }
    }
    match f.argv {
        Some(a) => emit::set_argv(e, a),
        // SAFETY: reserved record.
        None => unsafe { (*e).argc = b.argc },
    }
    emit::set_kernel_path(e, b.interp);
    entry.submit(0);
}

pub(crate) fn mismatch_report(w: &Watched, v: &Verdict, o: &Outcome, b: &Bprm, image: &Argv) {
    let Some(mut entry) = emit::start(EventKind::ArgvMismatch, w, v, o) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: reserved record.
    unsafe {
        (*e).fingerprint = argv::fingerprint(image, b.file.dev, b.file.ino);
        (*e).dev = b.file.dev;
        (*e).ino = b.file.ino;
    }
    emit::set_argv(e, image);
    emit::set_kernel_path(e, b.interp);
    entry.submit(0);
}
