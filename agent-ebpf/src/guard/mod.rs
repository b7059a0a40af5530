//! LSM mode: no way out of the session and no tampering with the enforcer, for every process
//! of a watched session, root or not (`agent_common::tamper`). Each hook filters on its target
//! first (a guarded file system, the daemon's pid, a raw socket family), so that the host's
//! other processes pay one or two kernel reads; only then does it look the caller's agent group
//! up. A watched caller is refused with EPERM and the attempt is reported as a tamper event.
//! In monitor mode the attempt is reported and let through, like every other refusal.
//! Fallback mode has one guard of its own (`syscalls`): a watched process entering one of the
//! system calls above is killed on entry and reported the same way.

use agent_common::{
    event::{flags, EventKind},
    policy::group_flags,
    tamper::Tamper,
    Action,
};

use crate::{emit, enforce::Outcome, exec, rules::Verdict, watch::Watched, Error};

mod capabilities;
mod delegators;
mod enforcer;
mod files;
mod kernel_load;
pub mod loader;
mod mounts;
mod session;
mod sockets;
mod syscalls;

pub use sockets::unhooked_socket;

const EPERM: i32 = 1;

/// What the attempt was aimed at (see the variants of [`Tamper`] for each field's meaning).
#[derive(Clone, Copy, Default)]
pub struct Target {
    pub ino: u64,
    pub dev: u64,
    pub family: u16,
    pub protocol: u16,
    /// A kernel string naming the target (a file name), or 0.
    pub name: usize,
    /// Refuse without an event (an access the kernel itself does not audit, e.g. `ps`
    /// reading the daemon's /proc entries).
    pub quiet: bool,
}

/// An attempt on a guarded target: what was tried, and on what.
#[derive(Clone, Copy)]
pub struct Attempt {
    pub what: Tamper,
    pub target: Target,
}

impl Attempt {
    pub fn new(what: Tamper, target: Target) -> Self {
        Attempt { what, target }
    }

    /// An attempt whose target could not be read: the hook was reached on something that may
    /// be guarded, so a watched caller is refused all the same.
    pub fn unreadable(what: Tamper) -> Self {
        Attempt::new(what, Target::default())
    }
}

/// The LSM verdict on what the current process tried: EPERM for an attempt on a guarded
/// target by a watched process (0 in monitor mode), 0 for any other. A failure to tell whether
/// the caller is watched refuses: the target is guarded, so a read error must not open it.
///
/// Every hook finds its [`Attempt`] first and calls this once: the cgroup walk and the report
/// are then verified once per program, not once per way of reaching a guarded target (each
/// copy cost the verifier about 100 ms per daemon start under emulation).
#[inline(always)]
pub fn judge(attempt: Option<Attempt>) -> i32 {
    match attempt {
        Some(a) => decide(a, exec::watched()),
        None => 0,
    }
}

/// [`judge`] for a caller whose agent group is already known (`watched`; an error refuses).
#[inline(always)]
pub fn decide(attempt: Attempt, watched: Result<Option<Watched>, Error>) -> i32 {
    let w = match watched {
        Ok(Some(w)) => w,
        Ok(None) => return 0,
        Err(_) => return -EPERM,
    };
    if refused(attempt, &w, 0) {
        -EPERM
    } else {
        0
    }
}

/// Whether the watched caller `w` is refused `attempt` (reported unless quiet; `how` is
/// added to the event's flags when it is refused): not when its group opted in, nor in
/// monitor mode.
#[inline(always)]
fn refused(attempt: Attempt, w: &Watched, how: u32) -> bool {
    let Attempt { what, target } = attempt;
    let permit = what.permitted_by(
        target.family,
        target.dev as u16,
        target.protocol,
        target.ino,
    );
    if w.group.flags & permit != 0 {
        // The group opted in (`permit:` in its policy).
        return false;
    }
    let monitor = w.group.flags & group_flags::MONITOR != 0;
    let o = Outcome {
        refuse: !monitor,
        report: true,
        flags: if monitor { flags::MONITOR } else { how },
        grant_id: 0,
    };
    if !target.quiet {
        report(w, &o, what, &target);
    }
    o.refuse
}

/// Sends the tamper event (counted in the session's refusals first, like every refusal).
#[inline(always)]
fn report(w: &Watched, o: &Outcome, what: Tamper, target: &Target) {
    let v = Verdict {
        action: Action::Deny as u32,
        rule: 0,
        deferred: 0,
    };
    let Some(mut entry) = emit::start(EventKind::Tamper, w, &v, o) else {
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: reserved record.
    unsafe {
        (*e).detail = what as u32;
        (*e).ino = target.ino;
        (*e).dev = target.dev;
        (*e).family = target.family;
        (*e).protocol = target.protocol;
        (*e).path[0] = 0;
    }
    if target.name != 0 {
        emit::set_kernel_path(e, target.name);
    }
    entry.submit(0);
}
