//! Installing grants (retry tokens) into the kernel's grant map (`agent_common::grant`): one
//! slot per use, each bound to the exact operation and holding a fresh one-use ticket.

use std::{collections::HashSet, time::Duration};

use agent_common::{
    binding::Binding,
    grant::{Grant, GrantKey, MAX_GRANT_SLOTS},
};
use aya::maps::MapError;
use thiserror::Error;

use crate::maps::Maps;

/// `BPF_NOEXIST`: an insert that fails rather than replace (uapi `linux/bpf.h`).
const BPF_NOEXIST: u64 = 1;

#[derive(Debug, Error)]
pub enum GrantError {
    #[error("a grant has at most {MAX_GRANT_SLOTS} uses (0 = unlimited until it expires)")]
    TooManyUses,
    #[error("a grant needs a lifetime greater than zero")]
    NoLifetime,
    #[error(
        "the operation's arguments are longer than the kernel captures (511 bytes, or 31 \
         arguments after argv[0]): no grant can be bound to exactly this operation, so it \
         cannot be approved (docs/policy.md, \"Long command lines\")"
    )]
    Truncated,
    #[error(
        "the operation already has {MAX_GRANT_SLOTS} live grant uses in this scope; let them \
         be used, expire or be revoked first"
    )]
    NoFreeSlot,
    #[error("writing the grant map: {0}")]
    Map(#[from] MapError),
    #[error("reading the clock or the random source: {0}")]
    Io(std::io::Error),
}

/// A grant to install.
#[derive(Clone, Debug)]
pub struct NewGrant {
    /// cgroup id of the session or agent group the grant is for.
    pub scope: u64,
    /// Exactly the operation it lets through.
    pub binding: Binding,
    /// 1..=8 uses, or 0 for any number until expiry.
    pub uses: u32,
    pub ttl: Duration,
    pub grant_id: u64,
}

/// Writes the grant's slots: for each use a fresh ticket, then the slot naming it.
pub fn install(maps: &mut Maps, g: &NewGrant) -> Result<(), GrantError> {
    if g.uses > MAX_GRANT_SLOTS {
        return Err(GrantError::TooManyUses);
    }
    if g.ttl.is_zero() {
        return Err(GrantError::NoLifetime);
    }
    if g.binding.truncated() {
        return Err(GrantError::Truncated);
    }
    let now = monotonic_ns().map_err(GrantError::Io)?;
    let expires_ns = now + g.ttl.as_nanos() as u64;
    let lookup = g.binding.lookup();
    let free = free_slots(maps, g.scope, lookup, now);
    let wanted = g.uses.max(1) as usize;
    if free.len() < wanted {
        return Err(GrantError::NoFreeSlot);
    }
    for &slot in &free[..wanted] {
        let ticket = if g.uses == 0 { 0 } else { new_ticket(maps)? };
        let key = GrantKey {
            scope: g.scope,
            fingerprint: lookup,
            slot,
            _pad: 0,
        };
        let value = g.binding.grant(expires_ns, g.grant_id, ticket);
        maps.grants.insert(key, value, BPF_NOEXIST)?;
    }
    Ok(())
}

/// Slot numbers of `(scope, lookup)` that hold nothing live, emptied for reuse. A slot whose
/// ticket is gone was used: its value stays readable to any program that holds it until that
/// program ends, and its ticket can never come back, so the slot can take a new grant.
fn free_slots(maps: &mut Maps, scope: u64, lookup: u64, now: u64) -> Vec<u32> {
    let mut free = Vec::new();
    for slot in 0..MAX_GRANT_SLOTS {
        let key = GrantKey {
            scope,
            fingerprint: lookup,
            slot,
            _pad: 0,
        };
        match maps.grants.get(&key, 0) {
            Err(_) => free.push(slot),
            Ok(g) if !live(maps, &g, now) => {
                retire(maps, &key, &g);
                free.push(slot);
            }
            Ok(_) => {}
        }
    }
    free
}

/// A fresh ticket, inserted into `TICKETS` (never 0, never one that exists).
fn new_ticket(maps: &mut Maps) -> Result<u64, GrantError> {
    loop {
        let t = new_id().map_err(GrantError::Io)?;
        match maps.tickets.insert(t, 1, BPF_NOEXIST) {
            Ok(()) => return Ok(t),
            // A 2^-64 coincidence with a live ticket: draw again.
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether slot `g` can still let an operation through.
fn live(maps: &Maps, g: &Grant, now: u64) -> bool {
    g.expires_ns > now && (g.ticket == 0 || maps.tickets.get(&g.ticket, 0).is_ok())
}

/// Removes a slot: its ticket first, so that no program can claim it meanwhile.
fn retire(maps: &mut Maps, key: &GrantKey, g: &Grant) {
    if g.ticket != 0 {
        let _ = maps.tickets.remove(&g.ticket);
    }
    let _ = maps.grants.remove(key);
}

/// Removes every slot of grant `grant_id` (a revocation); returns how many uses were left.
pub fn revoke(maps: &mut Maps, grant_id: u64) -> Result<usize, GrantError> {
    retire_where(maps, |g| g.grant_id == grant_id)
}

/// Removes every slot for which `pred` holds; returns how many of them could still have let
/// an operation through (unexpired, ticket unclaimed).
pub fn retire_where(maps: &mut Maps, pred: impl Fn(&Grant) -> bool) -> Result<usize, GrantError> {
    let now = monotonic_ns().map_err(GrantError::Io)?;
    let slots: Vec<(GrantKey, Grant)> = maps
        .grants
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, g)| pred(g))
        .collect();
    let mut live_slots = 0;
    for (k, g) in &slots {
        if live(maps, g, now) {
            live_slots += 1;
        }
        retire(maps, k, g);
    }
    Ok(live_slots)
}

/// A grant the kernel holds now for an operation in a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    pub grant_id: u64,
    /// CLOCK_MONOTONIC nanoseconds.
    pub expires_ns: u64,
    /// One-use slots left (0: unlimited uses).
    pub uses_left: u32,
}

/// The unexpired grant for exactly `op` in `scope`, if any (read-only: nothing is claimed).
pub fn live_for(maps: &Maps, scope: u64, op: &Binding) -> Option<Live> {
    let now = monotonic_ns().ok()?;
    let mut found: Option<Live> = None;
    for slot in 0..MAX_GRANT_SLOTS {
        let key = GrantKey {
            scope,
            fingerprint: op.lookup(),
            slot,
            _pad: 0,
        };
        let Ok(g) = maps.grants.get(&key, 0) else {
            continue;
        };
        if !op.bound_by(&g) || !live(maps, &g, now) {
            continue;
        }
        let f = found.get_or_insert(Live {
            grant_id: g.grant_id,
            expires_ns: g.expires_ns,
            uses_left: 0,
        });
        if g.ticket != 0 && f.grant_id == g.grant_id {
            f.uses_left += 1;
        }
    }
    found
}

/// Removes used and expired grant slots, and tickets no slot names (left by a daemon that
/// stopped between writing a ticket and its slot). Returns how many slots went.
pub fn sweep(maps: &mut Maps) -> Result<usize, GrantError> {
    let now = monotonic_ns().map_err(GrantError::Io)?;
    let slots: Vec<(GrantKey, Grant)> = maps.grants.iter().filter_map(Result::ok).collect();
    let mut named = HashSet::new();
    let mut removed = 0;
    for (k, g) in &slots {
        if live(maps, g, now) {
            named.insert(g.ticket);
        } else {
            retire(maps, k, g);
            removed += 1;
        }
    }
    let orphans: Vec<u64> = maps
        .tickets
        .keys()
        .filter_map(Result::ok)
        .filter(|t| !named.contains(t))
        .collect();
    for t in orphans {
        let _ = maps.tickets.remove(&t);
    }
    Ok(removed)
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
pub fn monotonic_ns() -> std::io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// A random grant id (never 0).
pub fn new_id() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    Ok(u64::from_ne_bytes(b).max(1))
}
