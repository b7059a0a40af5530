//! Claiming grants (retry tokens) atomically.

use agent_common::grant::{GrantKey, MAX_GRANT_SLOTS};
use aya_ebpf::helpers::bpf_ktime_get_ns;

use crate::{maps::GRANTS, watch::Watched};

/// Tries to let the operation `fingerprint` through with a grant of the session or the group.
/// Returns the grant id used.
#[inline(always)]
pub fn claim(w: &Watched, fingerprint: u64) -> Option<u64> {
    if let Some(id) = claim_in(w.session_cgroup, fingerprint) {
        return Some(id);
    }
    if w.session_cgroup != w.group_cgroup {
        return claim_in(w.group_cgroup, fingerprint);
    }
    None
}

#[inline(always)]
fn claim_in(scope: u64, fingerprint: u64) -> Option<u64> {
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let mut slot = 0u32;
    while slot < MAX_GRANT_SLOTS {
        let key = GrantKey {
            scope,
            fingerprint,
            slot,
            _pad: 0,
        };
        // SAFETY: the value is copied out at once; a concurrent delete can at worst make us
        // read a stale copy, and the delete below decides who owns a one-use slot.
        if let Some(g) = unsafe { GRANTS.get(&key) }.copied() {
            if g.expires_ns <= now {
                let _ = GRANTS.remove(&key);
            } else if g.uses == 0 {
                return Some(g.grant_id);
            } else if GRANTS.remove(&key).is_ok() {
                // The delete succeeds for exactly one claimant: this one-use slot is ours.
                return Some(g.grant_id);
            }
        }
        slot += 1;
    }
    None
}
