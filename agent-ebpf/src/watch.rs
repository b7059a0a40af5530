//! Is the current process part of an agent group? (The watched cgroups and all their
//! descendants, including cgroups created after the policy was loaded; and, outside every
//! agent cgroup, the processes of a group's accounts, wherever they run: what an agent hands
//! to its account's systemd manager, cron, tmux server or ssh is still the agent's.)

use agent_common::{
    policy::{AccountKey, Group, State, WatchKey, STATE_INDEX},
    MAX_CGROUP_LEVEL,
};
use aya_ebpf::helpers::{bpf_get_current_uid_gid, generated::bpf_get_current_ancestor_cgroup_id};

use crate::{
    kernel::CgroupCursor,
    maps::{ACCOUNTS, STATE, WATCHED},
    Error,
};

/// The agent group of the current process and the scopes its grants may be bound to.
#[derive(Clone, Copy)]
pub struct Watched {
    pub group: Group,
    pub generation: u32,
    pub mode: u32,
    /// cgroup id of the agent group.
    pub group_cgroup: u64,
    /// cgroup id of the session (the child of the group cgroup the process is in), or the
    /// group's own id for a process directly in the group cgroup or outside it (an account's).
    pub session_cgroup: u64,
}

/// The current process's agent group, found by walking up from its own cgroup (exec
/// programs). Cost for an unwatched process: one array lookup and, per ancestor, two kernel
/// reads plus a hash lookup at the levels that hold a group.
#[inline(always)]
pub fn by_walk() -> Result<Option<Watched>, Error> {
    let Some(state) = STATE.get(STATE_INDEX) else {
        return Ok(None);
    };
    let state: &State = state;
    let generation = state.active & 1;
    let levels = state.levels[generation as usize];
    if levels == 0 {
        return Ok(None);
    }
    let mut cg = CgroupCursor::current()?;
    let mut child = 0u64;
    let mut step = 0;
    while step <= MAX_CGROUP_LEVEL {
        let id = cg.id()?;
        if levels & (1 << (cg.level & 31)) != 0 {
            if let Some(w) = found(state, generation, id, child) {
                return Ok(Some(w));
            }
        }
        if cg.level == 0 {
            break;
        }
        child = id;
        cg.up()?;
        step += 1;
    }
    Ok(by_account(state, generation))
}

/// The current process's agent group, from `bpf_get_current_ancestor_cgroup_id` (cgroup
/// socket programs, 5.7+).
#[inline(always)]
pub fn by_helper() -> Option<Watched> {
    let state: &State = STATE.get(STATE_INDEX)?;
    let generation = state.active & 1;
    let levels = state.levels[generation as usize];
    if levels == 0 {
        return None;
    }
    let mut level = 1u32;
    while level <= MAX_CGROUP_LEVEL {
        if levels & (1 << level) != 0 {
            // SAFETY: helper without memory arguments.
            let id = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
            if id == 0 {
                // The process sits above this level: no deeper group can hold it.
                return by_account(state, generation);
            }
            // SAFETY: as above.
            let session = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32 + 1) };
            if let Some(w) = found(state, generation, id, session) {
                return Some(w);
            }
        }
        level += 1;
    }
    by_account(state, generation)
}

/// A process outside every agent cgroup whose real uid is one of a group's accounts: judged
/// as that group's, at group scope (it belongs to no session). Costs unwatched processes one
/// hash lookup.
#[inline(always)]
fn by_account(state: &State, generation: u32) -> Option<Watched> {
    let key = AccountKey {
        generation,
        uid: bpf_get_current_uid_gid() as u32,
    };
    // SAFETY: plain value, copied out at once.
    let group_cgroup = *unsafe { ACCOUNTS.get(&key) }?;
    found(state, generation, group_cgroup, 0)
}

/// The group whose cgroup is `id`, if any; `child` is the process's ancestor one level below
/// it (its session), 0 when the process sits in the group cgroup itself.
#[inline(always)]
fn found(state: &State, generation: u32, id: u64, child: u64) -> Option<Watched> {
    let key = WatchKey {
        generation,
        _pad: 0,
        cgroup_id: id,
    };
    // SAFETY: plain-data value, copied out at once.
    let group = unsafe { WATCHED.get(&key) }?;
    Some(Watched {
        group: *group,
        generation,
        mode: state.mode,
        group_cgroup: id,
        session_cgroup: if child == 0 { id } else { child },
    })
}
