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
/// grant of the session or the group. Returns the grant id used.
#[inline(always)]
pub fn claim(w: &Watched, fingerprint: u64, rule: u32, op: &Op) -> Option<u64> {
    if let Op::Exec { argv, .. } = op {
        // A truncated capture is not the whole operation: nothing binds it.
        if argv.is_none_or(|a| a.truncated != 0) {
            return None;
        }
    }
    if let Some(id) = claim_in(w.session_cgroup, fingerprint, rule, op) {
        return Some(id);
    }
    if w.session_cgroup != w.group_cgroup {
        return claim_in(w.group_cgroup, fingerprint, rule, op);
    }
    None
}

#[inline(always)]
fn claim_in(scope: u64, fingerprint: u64, rule: u32, op: &Op) -> Option<u64> {
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
        if let Some(g) = GRANTS.get_ptr(&key) {
            // SAFETY: map value valid for this program run; grant values are never written
            // in place and the map is not preallocated, so it cannot change under us.
            let g: &Grant = unsafe { &*g };
            if g.expires_ns > now && g.rule == rule && binds(g, op) != 0 {
                if g.ticket == 0 {
                    return Some(g.grant_id);
                }
                // Tickets are never reused: deleting it succeeds for exactly one claimant,
                // and only while this very grant's use is unclaimed.
                if TICKETS.remove(&g.ticket).is_ok() {
                    return Some(g.grant_id);
                }
            }
        }
        slot += 1;
    }
    None
}

/// 1 when grant `g` binds exactly the operation `op`, else 0.
#[inline(always)]
fn binds(g: &Grant, op: &Op) -> u32 {
    match op {
        Op::Exec {
            dev,
            ino,
            stamp,
            argv,
        } => match argv {
            Some(a)
                if g.kind == kind::EXEC && g.dev == *dev && g.ino == *ino && g.stamp == *stamp =>
            {
                same_argv(g, a)
            }
            _ => 0,
        },
        Op::Connect {
            addr,
            port,
            protocol,
        } => {
            (g.kind == kind::CONNECT
                && g.port == *port
                && g.protocol == *protocol
                && g.addr == *addr) as u32
        }
    }
}

/// 1 when the grant's argument bytes and length are exactly the capture's, else 0. A separate
/// BPF function taking the two map values (like the rule slot matchers): the verifier checks
/// one constant-length, branch-free loop over the whole buffer and sees one 0/1 result.
#[inline(never)]
fn same_argv(g: &Grant, a: &Argv) -> u32 {
    let ours = a.tail.as_ptr() as *const u64;
    let theirs = g.argv.as_ptr() as *const u64;
    let mut diff = (g.argv_len ^ a.len) as u64;
    let mut i = 0;
    while i < ARGV_LEN / 8 {
        // SAFETY: both buffers hold at least ARGV_LEN bytes; unaligned reads.
        diff |= unsafe { ours.add(i).read_unaligned() ^ theirs.add(i).read_unaligned() };
        i += 1;
    }
    (diff == 0) as u32
}
