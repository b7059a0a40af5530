//! `sched_process_exec` (both modes) and its tail-called second half `exec_judge`: after the
//! exec committed and before the new image runs an instruction.

use agent_common::{event::flags, policy::stats, Mode};
use aya_ebpf::{macros::map, maps::PerCpuArray, programs::RawTracePointContext};

use super::{fail_closed, kill, mismatch_report, report, watched};
use crate::{
    argv::{self, Argv, CAPTURED, DEFERRED, PENDING_EXEC, SCRATCH_ARGV},
    enforce::{self, Outcome},
    grants::Op,
    identity,
    kernel::{self, Bprm},
    maps::{count, EXEC_TAIL},
    rules::{self, ExecFacts, Verdict},
    watch::Watched,
    Error,
};

/// What `sched_process_exec` hands to `exec_judge` through [`EXEC_CTX`] (the new image's
/// arguments travel in the per-CPU `SCRATCH_ARGV`; a tail call stays on the same CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecCtx {
    pub w: Watched,
    pub dev: u64,
    pub ino: u64,
    pub interp: usize,
    /// The `struct linux_binprm *` (valid until the tracepoint returns: the tail call runs
    /// within it).
    pub bprm: usize,
    pub interpreted: u32,
    pub argc: u32,
    pub links: u32,
    pub old_pid: u32,
    pub mode: u32,
    pub ppid: u32,
    pub parent: u32,
}

/// What the first half of `sched_process_exec` hands to the second.
#[map]
pub static EXEC_CTX: PerCpuArray<ExecCtx> = PerCpuArray::with_max_entries(1, 0);

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
    let w = match watched() {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(()),
        Err(e) => {
            kill();
            return Err(e);
        }
    };
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
            bprm: b.ptr,
            interpreted: b.interpreted as u32,
            argc: b.argc,
            links: b.links,
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
        ptr: c.bprm,
        links: c.links,
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
    let id = match identity::of_exec(w.generation, &b) {
        Ok(id) => id,
        Err(e) => {
            if fail_closed(w, e) != 0 {
                kill();
            }
            return Err(e);
        }
    };
    let facts = ExecFacts {
        generation: w.generation,
        group: w.group.id,
        binary: id.binary,
        parent: c.parent,
        argv: Some(image),
        identity: id.flags,
        stamp: id.stamp,
    };
    let v = rules::judge_exec(&facts, &w.group);
    let fp = argv::fingerprint(image, b.file.dev, b.file.ino);
    let op = Op::Exec {
        dev: b.file.dev,
        ino: b.file.ino,
        stamp: id.stamp,
        argv: Some(image),
    };
    let mut o = enforce::outcome(w, &v, fp, &op);
    count(stats::EXEC_JUDGED);
    if o.refuse {
        count(stats::EXEC_REFUSED);
        kill();
        o.flags |= flags::KILLED;
    }
    if o.report {
        report(w, &v, &o, &b, fp, c.ppid, &facts, extra);
    }
    Ok(())
}
