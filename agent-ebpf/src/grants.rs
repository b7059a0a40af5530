//! Claiming grants (retry tokens): find the candidates by lookup hash, compare the exact
//! binding, then claim a one-use slot by deleting its ticket (`agent_common::grant`).

use agent_common::{
    grant::{kind, Grant, GrantKey, MAX_GRANT_SLOTS},
    ARGV_LEN,
};
use aya_ebpf::helpers::bpf_ktime_get_ns;

use crate::{
    argv::Argv,
    maps::{GRANTS, TICKETS},
    watch::Watched,
};

/// The operation a grant must bind exactly.
pub enum Op<'a> {
    /// An exec of `(dev, ino)` at write stamp `stamp` with these captured arguments (None:
    /// not known, so no grant can be compared with it and none applies).
    Exec {
        dev: u64,
        ino: u64,
        stamp: u64,
        argv: Option<&'a Argv>,
    },
    Connect {
        addr: [u8; 16],
        port: u16,
        protocol: u16,
    },
}

/// Tries to let the operation (lookup hash `fingerprint`, refused by `rule`) through with a
/// grant of the session or, failing that, of the group. Returns the grant id used.
///
/// Two passes: [`candidate`] finds the first live, unclaimed slot whose binding equals the
/// operation in everything but the argument bytes; then that one slot is compared whole
/// ([`difference`] again, then [`same_bytes`]) and claimed. Comparing the 512 argument bytes once instead of in each of the
/// 16 slots keeps the exec programs small for the verifier (the byte loops were a third of
/// `exec_judge`'s verified instructions, paid at every daemon start). Two slots differ only
/// in their argument bytes when their argv lengths and lookup hashes are equal too: a crafted
/// collision costs its crafter the grant (only the first such slot is compared), never another.
#[inline(always)]
pub fn claim(w: &Watched, fingerprint: u64, rule: u32, op: &Op) -> Option<u64> {
    if let Op::Exec { argv, .. } = op {
        // A truncated capture is not the whole operation: nothing binds it.
        if argv.is_none_or(|a| a.truncated != 0) {
            return None;
        }
    }
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    let key = candidate(w, fingerprint, rule, op, now)?;
    // SAFETY: map value valid for this program run; grant values are never written in place
    // and the map is not preallocated, so it cannot change under us. It is compared whole
    // again: the slot may have been replaced since `candidate` read it.
    let g: &Grant = unsafe { &*GRANTS.get_ptr(&key)? };
    if g.expires_ns <= now || difference(g, rule, op) != 0 || same_bytes(g, op) == 0 {
        return None;
    }
    if g.ticket == 0 {
        return Some(g.grant_id);
    }
    // Tickets are never reused: deleting it succeeds for exactly one claimant, and only
    // while this very grant's use is unclaimed.
    TICKETS.remove(&g.ticket).ok().map(|_| g.grant_id)
}

/// The first slot, the session's before the group's, that is live, unclaimed (its ticket
/// still there, or unlimited uses) and binds `op` but for the argument bytes.
#[inline(always)]
fn candidate(w: &Watched, fingerprint: u64, rule: u32, op: &Op, now: u64) -> Option<GrantKey> {
    let mut i = 0u32;
    while i < 2 * MAX_GRANT_SLOTS {
        let key = GrantKey {
            scope: if i < MAX_GRANT_SLOTS {
                w.session_cgroup
            } else {
                w.group_cgroup
            },
            fingerprint,
            slot: i % MAX_GRANT_SLOTS,
            _pad: 0,
        };
        if let Some(g) = GRANTS.get_ptr(&key) {
            // SAFETY: as in `claim`.
            let g: &Grant = unsafe { &*g };
            if g.expires_ns > now
                && difference(g, rule, op) == 0
                // SAFETY: presence only.
                && (g.ticket == 0 || unsafe { TICKETS.get(&g.ticket) }.is_some())
            {
                return Some(key);
            }
        }
        i += 1;
    }
    None
}

/// 0 when grant `g` (of rule `rule`) binds `op` in everything but the argument bytes, else
/// not 0. Branch-free: one comparison for the verifier, whatever the fields.
#[inline(always)]
fn difference(g: &Grant, rule: u32, op: &Op) -> u64 {
    let common = (g.rule ^ rule) as u64;
    match op {
        Op::Exec {
            dev,
            ino,
            stamp,
            argv,
        } => {
            let len = argv.map_or(u32::MAX, |a| a.len);
            common
                | (g.kind ^ kind::EXEC) as u64
                | (g.dev ^ dev)
                | (g.ino ^ ino)
                | (g.stamp ^ stamp)
                | (g.argv_len ^ len) as u64
        }
        Op::Connect {
            addr,
            port,
            protocol,
        } => {
            let ours = u128::from_ne_bytes(*addr);
            let theirs = u128::from_ne_bytes(g.addr);
            let addr_diff = ours ^ theirs;
            common
                | (g.kind ^ kind::CONNECT) as u64
                | (g.port ^ port) as u64
                | (g.protocol ^ protocol) as u64
                | (addr_diff as u64)
                | ((addr_diff >> 64) as u64)
        }
    }
}

/// 1 when grant `g` holds the argument bytes of `op` (a connect has none), else 0.
#[inline(always)]
fn same_bytes(g: &Grant, op: &Op) -> u32 {
    match op {
        Op::Exec { argv: Some(a), .. } => same_argv(g, a),
        Op::Exec { argv: None, .. } => 0,
        Op::Connect { .. } => 1,
    }
}

/// 1 when the grant's argument bytes are exactly the capture's, else 0. A separate BPF
/// function taking the two map values (like the rule slot matchers): the verifier checks one
/// constant-length, branch-free loop over the whole buffer and sees one 0/1 result.
#[inline(never)]
fn same_argv(g: &Grant, a: &Argv) -> u32 {
    let ours = a.tail.as_ptr() as *const u64;
    let theirs = g.argv.as_ptr() as *const u64;
    let mut diff = 0u64;
    let mut i = 0;
    while i < ARGV_LEN / 8 {
        // SAFETY: both buffers hold at least ARGV_LEN bytes; unaligned reads.
        diff |= unsafe { ours.add(i).read_unaligned() ^ theirs.add(i).read_unaligned() };
        i += 1;
    }
    (diff == 0) as u32
}
