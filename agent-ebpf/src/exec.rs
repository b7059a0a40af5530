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
    Mode,
};
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_send_signal},
    programs::RawTracePointContext,
};

use crate::{
    argv::{self, Argv, CAPTURED, DEFERRED},
    emit,
    enforce::{self, Outcome},
    kernel::{self, Bprm},
    maps::{count, EXEC_CTX, EXEC_TAIL, PENDING_EXEC, SCRATCH_ARGV},
    rules::{self, ExecFacts, Verdict},
    watch::{self, Watched},
    Error,
};

const SIGKILL: u32 = 9;
const EPERM: i32 = 1;

/// Syscall entry: remember argv for the later stages.
#[inline(always)]
pub fn enter(argv_ptr: *const *const u8) -> Result<(), Error> {
    if watched().is_none() {
        return Ok(());
    }
    let a = argv::scratch()?;
    argv::capture(a, argv_ptr)?;
    argv::remember(bpf_get_current_pid_tgid() as u32, a)
}

/// `bprm_check_security` (LSM mode). Returns 0 or -EPERM.
#[inline(always)]
pub fn check(bprm_ptr: usize) -> Result<i32, Error> {
    let Some(w) = watched() else { return Ok(0) };
    let tid = bpf_get_current_pid_tgid() as u32;
    let b = match kernel::bprm(bprm_ptr) {
        Ok(b) => b,
        Err(e) => return Ok(fail_closed(&w, e)),
    };
    // At an interpreter level the new image will get other arguments than the caller passed
    // (`interp [arg] script args…`): they are not known yet. (Explicit branches rather than
    // Option combinators: the compiler would otherwise mask map pointers, which the verifier
    // refuses.)
    if let Some(p) = PENDING_EXEC.get_ptr(&tid) {
        // SAFETY: map value valid for this run; only this thread's exec uses this key.
        let a = unsafe { &*p };
        if a.state & CAPTURED != 0 && !b.interpreted {
            return decide(&w, &b, tid, Some(a));
        }
    }
    decide(&w, &b, tid, None)
}

/// The LSM verdict on an exec whose arguments are `known` (or not yet).
#[inline(always)]
fn decide(w: &Watched, b: &Bprm, tid: u32, known: Option<&Argv>) -> Result<i32, Error> {
    let (facts, ppid) = facts(w, b, known)?;
    let v = rules::judge_exec(&facts, w.group.default_exec);
    if v.deferred != 0 {
        defer(tid)?;
        return Ok(0);
    }
    let fp = match known {
        Some(a) => argv::fingerprint(a, b.file.dev, b.file.ino),
        None => agent_common::hash::exec_fingerprint(b.file.dev, b.file.ino, 0),
    };
    let o = enforce::outcome(w, &v, fp);
    count(stats::EXEC_JUDGED);
    if o.report {
        report(w, &v, &o, b, fp, ppid, known, 0);
    }
    if o.refuse {
        count(stats::EXEC_REFUSED);
        return Ok(-EPERM);
    }
    Ok(0)
}

/// What `sched_process_exec` hands to `exec_judge` through [`EXEC_CTX`] (the new image's
/// arguments travel in the per-CPU `SCRATCH_ARGV`; a tail call stays on the same CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecCtx {
    pub w: Watched,
    pub dev: u64,
    pub ino: u64,
    pub interp: usize,
    pub interpreted: u32,
    pub argc: u32,
    pub old_pid: u32,
    pub mode: u32,
    pub ppid: u32,
    pub parent: u32,
}

/// `sched_process_exec`, first half (both modes): capture the new image's arguments, then
/// tail-call `exec_judge`. The work is split in two programs so that each stays far below
/// the verifier's budget on every kernel. Kills the process when it cannot be judged.
#[inline(always)]
pub fn committed(
    ctx: &RawTracePointContext,
    old_pid: u32,
    bprm_ptr: usize,
    mode: Mode,
) -> Result<(), Error> {
    let Some(w) = watched() else { return Ok(()) };
    let prepared = prepare(&w, old_pid, bprm_ptr, mode);
    if prepared.is_ok() {
        // SAFETY: the context is this program's; the map holds `exec_judge` at index 0.
        unsafe { EXEC_TAIL.tail_call(ctx, 0) };
    }
    // Reached only when the capture or the tail call failed: fail closed.
    if fail_closed(&w, Error::Map) != 0 {
        kill();
    }
    prepared.and(Err(Error::TailCall))
}

#[inline(always)]
fn prepare(w: &Watched, old_pid: u32, bprm_ptr: usize, mode: Mode) -> Result<(), Error> {
    let b = kernel::bprm(bprm_ptr)?;
    let image = argv::scratch()?;
    let argv_ptr = kernel::image_argv(kernel::current_task())?;
    argv::capture(image, argv_ptr as *const *const u8)?;
    let (ppid, parent) = kernel::parent_of(kernel::current_task())?;
    let parent = parent.map_or(rules::NO_BINARY, |p| {
        rules::binary_id(w.generation, p.dev, p.ino)
    });
    let c = EXEC_CTX.get_ptr_mut(0).ok_or(Error::Map)?;
    // SAFETY: per-CPU map value.
    unsafe {
        *c = ExecCtx {
            w: *w,
            dev: b.file.dev,
            ino: b.file.ino,
            interp: b.interp,
            interpreted: b.interpreted as u32,
            argc: b.argc,
            old_pid,
            mode: mode as u32,
            ppid,
            parent,
        };
    }
    Ok(())
}

/// `exec_judge` (tail call of `sched_process_exec`): compare the image's arguments with the
/// judged ones (kill on mismatch: the argv-rewrite race); judge in fallback mode, and in LSM
/// mode when the decision needed arguments the LSM hook could not know; refuse by SIGKILL.
#[inline(always)]
pub fn judge_committed() -> Result<(), Error> {
    // SAFETY: per-CPU values written by `sched_process_exec` just before the tail call.
    let c: &ExecCtx = unsafe { &*EXEC_CTX.get_ptr(0).ok_or(Error::Map)? };
    let image: &Argv = unsafe { &*SCRATCH_ARGV.get_ptr(0).ok_or(Error::Map)? };
    let w = &c.w;
    let b = Bprm {
        file: kernel::FileId {
            dev: c.dev,
            ino: c.ino,
        },
        interp: c.interp,
        interpreted: c.interpreted != 0,
        argc: c.argc,
    };
    // SAFETY: map value valid for this run; the entry is removed only at the end.
    let entry: Option<&Argv> = PENDING_EXEC.get_ptr(&c.old_pid).map(|p| unsafe { &*p });
    let mut extra = 0;
    match entry {
        Some(e) if e.state & CAPTURED != 0 => {
            if !argv::same_args(e, image, b.interpreted) {
                let _ = PENDING_EXEC.remove(&c.old_pid);
                count(stats::ARGV_MISMATCH);
                kill();
                let v = Verdict {
                    action: agent_common::Action::Deny as u32,
                    rule: 0,
                    deferred: 0,
                };
                let o = Outcome {
                    refuse: true,
                    report: true,
                    flags: flags::KILLED,
                    grant_id: 0,
                };
                mismatch_report(w, &v, &o, &b, image);
                return Ok(());
            }
        }
        _ => extra |= flags::ARGV_FROM_IMAGE,
    }
    let deferred = entry.is_some_and(|e| e.state & DEFERRED != 0);
    let _ = PENDING_EXEC.remove(&c.old_pid);
    let must_judge = c.mode == Mode::Fallback as u32 || deferred || extra != 0;
    if !must_judge {
        return Ok(());
    }
    let binary = rules::binary_id(w.generation, b.file.dev, b.file.ino);
    let facts = ExecFacts {
        generation: w.generation,
        group: w.group.id,
        binary,
        parent: c.parent,
        argv: Some(image),
    };
    let v = rules::judge_exec(&facts, w.group.default_exec);
    let fp = argv::fingerprint(image, b.file.dev, b.file.ino);
    let mut o = enforce::outcome(w, &v, fp);
    count(stats::EXEC_JUDGED);
    if o.refuse {
        count(stats::EXEC_REFUSED);
        kill();
        o.flags |= flags::KILLED;
    }
    if o.report {
        report(w, &v, &o, &b, fp, c.ppid, Some(image), extra);
    }
    Ok(())
}

/// The agent group of the current process (exec programs walk the cgroup hierarchy).
#[inline(always)]
fn watched() -> Option<Watched> {
    match watch::by_walk() {
        Ok(w) => w,
        Err(_) => {
            count(stats::WATCH_ERRORS);
            None
        }
    }
}

fn kill() {
    // SAFETY: signals the current task, which is the process that just exec'd.
    unsafe { bpf_send_signal(SIGKILL) };
}

/// An internal error while judging a watched exec: refuse (unless the group only monitors),
/// so that an error can never let through what a rule refuses. Returns the LSM verdict.
fn fail_closed(w: &Watched, _e: Error) -> i32 {
    count(stats::FAILED_CLOSED);
    if w.group.flags & agent_common::policy::group_flags::MONITOR != 0 {
        0
    } else {
        -EPERM
    }
}

/// The rule inputs of an exec, and the parent's pid for the event.
#[inline(always)]
fn facts<'a>(w: &Watched, b: &Bprm, argv: Option<&'a Argv>) -> Result<(ExecFacts<'a>, u32), Error> {
    let (ppid, parent) = kernel::parent_of(kernel::current_task())?;
    let parent = parent.map_or(rules::NO_BINARY, |p| {
        rules::binary_id(w.generation, p.dev, p.ino)
    });
    let binary = rules::binary_id(w.generation, b.file.dev, b.file.ino);
    Ok((
        ExecFacts {
            generation: w.generation,
            group: w.group.id,
            binary,
            parent,
            argv,
        },
        ppid,
    ))
}

/// Marks the thread's pending exec as deferred to `sched_process_exec`.
#[inline(always)]
fn defer(tid: u32) -> Result<(), Error> {
    if let Some(p) = PENDING_EXEC.get_ptr_mut(&tid) {
        // SAFETY: map value valid for this run.
        unsafe { (*p).state |= DEFERRED };
        return Ok(());
    }
    let a = argv::scratch()?;
    a.state = DEFERRED;
    argv::remember(tid, a)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn report(
    w: &Watched,
    v: &Verdict,
    o: &Outcome,
    b: &Bprm,
    fp: u64,
    ppid: u32,
    argv: Option<&Argv>,
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
        (*e).ppid = ppid;
        (*e).flags |= extra;
        if b.interpreted {
            (*e).flags |= flags::INTERPRETED;
        }
    }
    match argv {
        Some(a) => emit::set_argv(e, a),
        // SAFETY: reserved record.
        None => unsafe { (*e).argc = b.argc },
    }
    emit::set_kernel_path(e, b.interp);
    entry.submit(0);
}

fn mismatch_report(w: &Watched, v: &Verdict, o: &Outcome, b: &Bprm, image: &Argv) {
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
