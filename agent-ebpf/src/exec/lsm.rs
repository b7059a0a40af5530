//! `bprm_check_security` (LSM mode): judge the file about to run, at each binfmt level;
//! refuse with EPERM, or defer to `sched_process_exec` when the arguments are not known yet.

use agent_common::{policy::stats, Action};
use aya_ebpf::helpers::bpf_get_current_pid_tgid;

use super::{facts, fail_closed, report, watched, EPERM};
use crate::{
    argv::PENDING_EXEC,
    argv::{self, Argv, CAPTURED, DEFERRED},
    enforce,
    grants::Op,
    kernel::{self, Bprm},
    maps::count,
    rules,
    watch::Watched,
    Error,
};

/// `bprm_check_security` (LSM mode). Returns 0 or -EPERM.
#[inline(always)]
pub fn check(bprm_ptr: usize) -> Result<i32, Error> {
    let w = match watched() {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(0),
        Err(_) => return Ok(-EPERM),
    };
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
    let v = rules::judge_exec(&facts, &w.group);
    // A grant binds the exact arguments: an approval without them known waits for the new
    // image's arguments too, or no grant could ever let it through.
    let approving = v.action == Action::Approve as u32;
    if v.deferred != 0 || (known.is_none() && approving) {
        defer(tid)?;
        return Ok(0);
    }
    let fp = match known {
        Some(a) => argv::fingerprint(a, b.file.dev, b.file.ino),
        None => agent_common::hash::exec_fingerprint(b.file.dev, b.file.ino, 0),
    };
    let op = Op::Exec {
        dev: b.file.dev,
        ino: b.file.ino,
        stamp: facts.stamp,
        argv: known,
    };
    let o = enforce::outcome(w, &v, fp, &op);
    count(stats::EXEC_JUDGED);
    if o.report {
        report(w, &v, &o, b, fp, ppid, &facts, 0);
    }
    if o.refuse {
        count(stats::EXEC_REFUSED);
        return Ok(-EPERM);
    }
    Ok(0)
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
