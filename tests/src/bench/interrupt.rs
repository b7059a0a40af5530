//! Ctrl-C (and SIGTERM, SIGHUP) as an orderly stop: the default action would kill the
//! benchmark and leave its daemon, its pinned programs and its cgroups behind, so the
//! signal only sets a flag and the run ends through its normal error path, which cleans up.
//! Children keep the default actions (exec resets handlers): Ctrl-C still kills a running
//! workload, and its failure ends the run the same way.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT/SIGTERM/SIGHUP: the run stops after the current step and cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Catches SIGINT, SIGTERM and SIGHUP for [`check`] from now on.
pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// An error once a signal asked the run to stop; called between the steps of a run.
pub fn check() -> Result<(), String> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}
