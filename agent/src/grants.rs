//! Installing grants (retry tokens) into the kernel's grant map.

use std::time::Duration;

use agent_common::grant::{Grant, GrantKey, MAX_GRANT_SLOTS};
use thiserror::Error;

use crate::maps::Maps;

#[derive(Debug, Error)]
pub enum GrantError {
    #[error("a grant has at most {MAX_GRANT_SLOTS} uses (0 = unlimited until it expires)")]
    TooManyUses,
    #[error("a grant needs a lifetime greater than zero")]
    NoLifetime,
    #[error("writing the grant map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("reading the clock: {0}")]
    Clock(std::io::Error),
}

/// A grant to install.
#[derive(Clone, Copy, Debug)]
pub struct NewGrant {
    /// cgroup id of the session or agent group the grant is for.
    pub scope: u64,
    pub fingerprint: u64,
    /// 1..=8 uses, or 0 for any number until expiry.
    pub uses: u32,
    pub ttl: Duration,
    pub grant_id: u64,
}

/// Writes the grant's slots. Each one-use slot is claimed by the kernel with an atomic delete.
pub fn install(maps: &mut Maps, g: &NewGrant) -> Result<(), GrantError> {
    if g.uses > MAX_GRANT_SLOTS {
        return Err(GrantError::TooManyUses);
    }
    if g.ttl.is_zero() {
        return Err(GrantError::NoLifetime);
    }
    let expires_ns = monotonic_ns().map_err(GrantError::Clock)? + g.ttl.as_nanos() as u64;
    let slots = g.uses.max(1);
    for slot in 0..slots {
        let key = GrantKey {
            scope: g.scope,
            fingerprint: g.fingerprint,
            slot,
            _pad: 0,
        };
        let value = Grant {
            expires_ns,
            grant_id: g.grant_id,
            uses: u32::from(g.uses != 0),
            _pad: 0,
        };
        maps.grants.insert(key, value, 0)?;
    }
    Ok(())
}

/// Removes every slot of grant `grant_id` (a revocation); returns how many there were.
pub fn revoke(maps: &mut Maps, grant_id: u64) -> Result<usize, GrantError> {
    let slots: Vec<GrantKey> = maps
        .grants
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, g)| g.grant_id == grant_id)
        .map(|(k, _)| k)
        .collect();
    let mut removed = 0;
    for k in &slots {
        // A slot the kernel claimed meanwhile is simply gone.
        if maps.grants.remove(k).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A grant the kernel holds now for `fingerprint` in `scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    pub grant_id: u64,
    /// CLOCK_MONOTONIC nanoseconds.
    pub expires_ns: u64,
    /// One-use slots left (0: unlimited uses).
    pub uses_left: u32,
}

/// The unexpired grant for `fingerprint` in `scope`, if any (read-only: nothing is claimed).
pub fn live(maps: &Maps, scope: u64, fingerprint: u64) -> Option<Live> {
    let now = monotonic_ns().ok()?;
    let mut found: Option<Live> = None;
    for slot in 0..MAX_GRANT_SLOTS {
        let key = GrantKey {
            scope,
            fingerprint,
            slot,
            _pad: 0,
        };
        let Ok(g) = maps.grants.get(&key, 0) else {
            continue;
        };
        if g.expires_ns <= now {
            continue;
        }
        let f = found.get_or_insert(Live {
            grant_id: g.grant_id,
            expires_ns: g.expires_ns,
            uses_left: 0,
        });
        if g.uses != 0 && f.grant_id == g.grant_id {
            f.uses_left += 1;
        }
    }
    found
}

/// Removes expired grants (the kernel removes the ones it meets; this sweeps the rest).
pub fn sweep(maps: &mut Maps) -> Result<usize, GrantError> {
    let now = monotonic_ns().map_err(GrantError::Clock)?;
    let expired: Vec<GrantKey> = maps
        .grants
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, g)| g.expires_ns <= now)
        .map(|(k, _)| k)
        .collect();
    for k in &expired {
        let _ = maps.grants.remove(k);
    }
    Ok(expired.len())
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
