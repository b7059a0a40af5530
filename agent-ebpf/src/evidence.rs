//! Per-session evidence that survives a flood (`agent_common::session`): every refusal and
//! grant use is counted in the session's counters before any event is reserved, events that do
//! not fit the ring buffer are counted as lost, and a session's events beyond its rate are
//! counted and dropped — except grant uses, which always try for a record.

use agent_common::{
    event::flags,
    session::{SessionStats, REFUSAL_EVENTS_PER_WINDOW, WINDOW_NS},
};
use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_ns};

use crate::{enforce::Outcome, maps::SESSION_STATS, watch::Watched};

/// This CPU's counters of `session`, created at zero.
#[inline(always)]
fn stats(session: u64) -> Option<&'static mut SessionStats> {
    if SESSION_STATS.get_ptr_mut(&session).is_none() {
        let zero = SessionStats::default();
        let _ = SESSION_STATS.insert(&session, &zero, BPF_NOEXIST as u64);
    }
    let p = SESSION_STATS.get_ptr_mut(&session)?;
    // SAFETY: per-CPU map value, valid for this program run; programs do not migrate CPUs.
    Some(unsafe { &mut *p })
}

/// Counts the reported operation for its session and says whether its event may be sent.
#[inline(always)]
pub fn admit(w: &Watched, o: &Outcome) -> bool {
    let Some(s) = stats(w.session_cgroup) else {
        // No counters (map error): never silence the event.
        return true;
    };
    let granted = o.flags & flags::GRANT_USED != 0;
    if granted {
        s.granted += 1;
        return true;
    }
    if o.refuse {
        s.refused += 1;
    }
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(s.window_start_ns) >= WINDOW_NS {
        s.window_start_ns = now;
        s.window_events = 0;
    }
    if s.window_events >= REFUSAL_EVENTS_PER_WINDOW {
        s.events_limited += 1;
        return false;
    }
    s.window_events += 1;
    true
}

/// Counts an event of `session` that did not fit the ring buffer.
#[inline(always)]
pub fn lost(w: &Watched) {
    if let Some(s) = stats(w.session_cgroup) {
        s.events_lost += 1;
    }
}
