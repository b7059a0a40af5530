//! The hashes that identify arguments and operations, computed the same way in the kernel
//! and in userspace (FNV-1a, 64 bit: cheap, branch-free per byte, no tables).
//!
//! These hashes are identifiers, not a defence against collisions crafted by an attacker; the
//! kernel compares argument hashes only against the literals of the policy, and a fingerprint
//! collision could only make two operations share one grant.

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Pattern value meaning "any argument" in a compiled exec rule.
pub const ANY_ARG: u64 = 0;

#[inline(always)]
pub const fn step(h: u64, byte: u8) -> u64 {
    (h ^ byte as u64).wrapping_mul(FNV_PRIME)
}

/// Mixes a 64-bit word into a hash, byte by byte (little endian).
#[inline(always)]
pub const fn mix_u64(mut h: u64, v: u64) -> u64 {
    let mut i = 0;
    while i < 8 {
        h = step(h, (v >> (i * 8)) as u8);
        i += 1;
    }
    h
}

/// Hash of one argument; never [`ANY_ARG`].
pub const fn arg(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < bytes.len() {
        h = step(h, bytes[i]);
        i += 1;
    }
    finish_arg(h)
}

/// Maps the reserved value 0 away so that an argument can never look like [`ANY_ARG`].
#[inline(always)]
pub const fn finish_arg(h: u64) -> u64 {
    if h == ANY_ARG {
        1
    } else {
        h
    }
}

/// Fingerprint of an exec: the file really executed and the arguments after argv[0]
/// (argv[0] is free text the caller chooses; it never takes part in a decision).
pub fn exec_fingerprint(dev: u64, ino: u64, arg_hashes: &[u64]) -> u64 {
    let mut h = mix_u64(mix_u64(FNV_OFFSET, dev), ino);
    for a in arg_hashes.iter().skip(1) {
        h = mix_u64(h, *a);
    }
    h
}

/// Fingerprint of a connect: destination (IPv6 or IPv4-mapped), port and protocol.
pub fn connect_fingerprint(addr: &[u8; 16], port: u16, protocol: u16) -> u64 {
    let mut h = FNV_OFFSET;
    let mut i = 0;
    while i < 16 {
        h = step(h, addr[i]);
        i += 1;
    }
    mix_u64(h, ((protocol as u64) << 16) | port as u64)
}
