//! The hashes that identify arguments and operations, computed the same way in the kernel
//! and in userspace (FNV-1a, 64 bit: cheap, branch-free per byte, no tables).
//!
//! FNV is not collision-resistant: anyone can compute two inputs with the same hash. So these
//! hashes never decide anything on their own. Argument hashes are compared only against the
//! policy's literals, which the agent does not choose. The exec and connect fingerprints only
//! *find* candidate grants: the kernel then compares the grant's exact binding with the
//! operation (`crate::grant`). Userspace names operations by a SHA-256-based id of that
//! binding instead (the daemon's `binding` module).

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

/// Mixes one 64-bit word into a hash (FNV-1a style, a word at a time: an eighth of the
/// instructions of a byte-wise hash, which matters to the verifier).
#[inline(always)]
pub const fn mix_word(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(FNV_PRIME)
}

/// Hash of one argument as the kernel computes it: the argument zero-padded to
/// [`crate::ARG_SLOT`] bytes, mixed in 8-byte little-endian words. None for an argument too
/// long to be compared whole ([`crate::MAX_WHOLE_ARG`] bytes at most) or holding a NUL.
/// Never [`ANY_ARG`].
pub fn arg(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > crate::MAX_WHOLE_ARG || bytes.contains(&0) {
        return None;
    }
    let mut slot = [0u8; crate::ARG_SLOT];
    slot[..bytes.len()].copy_from_slice(bytes);
    Some(words_hash(&slot))
}

/// Hash of a zero-padded slot or buffer, a word at a time; never [`ANY_ARG`].
pub fn words_hash(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for w in bytes.chunks(8) {
        let mut b = [0u8; 8];
        b[..w.len()].copy_from_slice(w);
        h = mix_word(h, u64::from_le_bytes(b));
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
/// (argv[0] is free text the caller chooses; it never takes part in a decision). `tail` is
/// the hash of argv[1..] as [`tail_hash`] computes it.
pub const fn exec_fingerprint(dev: u64, ino: u64, tail: u64) -> u64 {
    mix_word(mix_word(mix_word(FNV_OFFSET, dev), ino), tail)
}

/// Hash of argv[1..] as captured: NUL-separated bytes zero-padded to [`crate::ARGV_LEN`],
/// a word at a time, then the captured length.
pub fn tail_hash(buf: &[u8; crate::ARGV_LEN], len: u32) -> u64 {
    mix_word(words_hash(buf), len as u64)
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
