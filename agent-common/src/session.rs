//! What the kernel counts per agent session, whatever happens to the event ring buffer: the
//! evidence that a flood cannot wipe out (docs/architecture.md, "Evidence under a flood").
//!
//! Kept in the per-CPU LRU map `SESSION_STATS`, keyed by the session's cgroup id; the daemon
//! sums the CPUs' copies.

/// Refusal events one session may send per CPU per [`WINDOW_NS`]; more are counted in
/// [`SessionStats::events_limited`] and not sent, so that one agent's flood of refusals
/// cannot crowd the ring buffer out for the others. Grant uses are never limited.
pub const REFUSAL_EVENTS_PER_WINDOW: u64 = 200;
/// Length of a rate-limiting window: one second.
pub const WINDOW_NS: u64 = 1_000_000_000;
/// Sessions whose counters are kept (the least recently active are forgotten first).
pub const MAX_SESSIONS: u32 = 4096;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Operations refused (or killed), whether or not an event went out.
    pub refused: u64,
    /// Operations let through by a grant, whether or not an event went out.
    pub granted: u64,
    /// Events that did not fit the ring buffer.
    pub events_lost: u64,
    /// Refusal events not sent because the session exceeded its rate.
    pub events_limited: u64,
    /// Start of the current rate-limiting window (CLOCK_MONOTONIC ns).
    pub window_start_ns: u64,
    /// Refusal events sent in the current window.
    pub window_events: u64,
}

impl SessionStats {
    /// Adds another CPU's copy.
    pub fn add(&mut self, o: &Self) {
        self.refused += o.refused;
        self.granted += o.granted;
        self.events_lost += o.events_lost;
        self.events_limited += o.events_limited;
    }
}

const _: () = assert!(core::mem::size_of::<SessionStats>() == 48);
