//! From the policy's verdict to what happens: grants, monitor mode, counters.

use agent_common::{event::flags, policy::group_flags, Action};

use crate::{
    grants::{self, Op},
    rules::Verdict,
    watch::Watched,
};

/// What to do with the operation and what to report.
#[derive(Clone, Copy)]
pub struct Outcome {
    pub refuse: bool,
    /// Whether an event is due.
    pub report: bool,
    /// [`agent_common::event::flags`].
    pub flags: u32,
    pub grant_id: u64,
}

#[inline(always)]
pub fn outcome(w: &Watched, v: &Verdict, fingerprint: u64, op: &Op) -> Outcome {
    let action = v.action;
    let refusing = action == Action::Deny as u32 || action == Action::Approve as u32;
    if !refusing {
        return Outcome {
            refuse: false,
            report: action != Action::Allow as u32,
            flags: 0,
            grant_id: 0,
        };
    }
    if w.group.flags & group_flags::MONITOR != 0 {
        return Outcome {
            refuse: false,
            report: true,
            flags: flags::MONITOR,
            grant_id: 0,
        };
    }
    if action == Action::Approve as u32 {
        if let Some(id) = grants::claim(w, fingerprint, v.rule, op) {
            return Outcome {
                refuse: false,
                report: true,
                flags: flags::GRANT_USED,
                grant_id: id,
            };
        }
    }
    Outcome {
        refuse: true,
        report: true,
        flags: 0,
        grant_id: 0,
    }
}
