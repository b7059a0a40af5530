//! No delegation through a unix socket: a watched process may not connect to a service that
//! runs work for whoever connects, outside the caller's cgroup (the container engines' APIs,
//! the system and user managers, the system bus, tmux and screen servers;
//! `agent_common::tamper::delegator`). The listener is known by the name it bound, which the
//! caller cannot change. A listener created in the caller's own cgroup (a tmux server the
//! agent started) is the session's own: what it runs stays in the session, judged.

use agent_common::tamper::{
    delegator::{self, NAME_MAX},
    Tamper,
};
use aya_ebpf::{
    helpers::generated::{bpf_get_current_cgroup_id, bpf_probe_read_kernel},
    macros::lsm,
    maps::lpm_trie::Key,
    programs::LsmContext,
};

use super::{judge, Attempt, Target};
use crate::{kernel, maps::DELEGATORS};

/// `unix_stream_connect(struct sock *sock, struct sock *other, struct sock *newsk)`:
/// `other` is the listening socket.
#[lsm(hook = "unix_stream_connect")]
pub fn unix_stream_connect(ctx: LsmContext) -> i32 {
    judge(delegator(ctx.arg(1)))
}

/// The attempt, when `listener` is bound to a delegator's name (or its name cannot be read).
/// One lookup in a longest-prefix-match trie: no loop over the name for the verifier to walk.
#[inline(always)]
fn delegator(listener: usize) -> Option<Attempt> {
    let unreadable = Some(Attempt::unreadable(Tamper::Delegator));
    let (path, len) = match kernel::unix_bound_name(listener) {
        Ok(Some(name)) => name,
        Ok(None) => return None,
        Err(_) => return unreadable,
    };
    let n = len.min(NAME_MAX);
    // Zero-padded: a bound path name's NUL (and what follows) is part of the match.
    let mut key = Key::new((NAME_MAX * 8) as u32, [0u8; NAME_MAX]);
    if n > 0 {
        // SAFETY: n <= NAME_MAX, the key's size; the helper validates the kernel address.
        let r = unsafe {
            bpf_probe_read_kernel(key.data.as_mut_ptr() as *mut _, n as u32, path as *const _)
        };
        if r != 0 {
            return unreadable;
        }
    }
    DELEGATORS.get(&key)?;
    if same_cgroup(listener) {
        return None;
    }
    let abstract_name = key.data[0] == 0;
    Some(Attempt::new(
        Tamper::Delegator,
        Target {
            dev: if abstract_name {
                delegator::ABSTRACT
            } else {
                0
            },
            name: path + abstract_name as usize,
            ..Target::default()
        },
    ))
}

/// Whether `listener` was created in the caller's own cgroup (a read error: no).
#[inline(always)]
fn same_cgroup(listener: usize) -> bool {
    // SAFETY: helper without arguments.
    let own = unsafe { bpf_get_current_cgroup_id() };
    matches!(kernel::sock_cgroup_id(listener), Ok(Some(id)) if id == own)
}
