//! No delegation through a unix socket: a watched process may not connect to a service that
//! runs work for whoever connects, outside the caller's cgroup (the container engines' APIs,
//! the system and user managers, the system bus; `agent_common::tamper::delegator`). The
//! listener is known by the name it bound, which the caller cannot change.

use agent_common::tamper::{delegator::NAME_MAX, Tamper};
use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel, macros::lsm, maps::lpm_trie::Key,
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
    let abstract_name = key.data[0] == 0;
    Some(Attempt::new(
        Tamper::Delegator,
        Target {
            dev: abstract_name as u64,
            name: path + abstract_name as usize,
            ..Target::default()
        },
    ))
}
